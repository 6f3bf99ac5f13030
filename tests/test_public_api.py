"""The flat public API: ``mdt_tensor.__all__`` is pinned, every name resolves, the import stays lean."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import mdt_tensor as mt

ROOT = Path(__file__).resolve().parents[1]

#: The public names. A new public function is added here on purpose (and reaches the API fuzz test).
EXPECTED = {
    # package
    "__version__", "errors", "fixed", "yuma", "aio", "memory", "feed", "distributed", "io", "studio", "U16_MAX", "WEI_PER_MDT",
    # errors
    "MdtError", "ShapeError", "DTypeError", "ValueRangeError", "DeviceMismatchError", "WeightError",
    "BalanceError", "WeiOverflowError", "NetworkError", "CircuitOpenError", "PoolTimeoutError", "PoolClosedError",
    # weights
    "WeightReport", "normalize_weights", "validate_weight_matrix", "check_weights", "clip_weights",
    "apply_weight_decay", "smooth_weights", "top_k_weights", "compute_weight_entropy",
    "sparse_to_dense_weights", "dense_to_sparse_weights",
    # consensus
    "DEFAULT_KAPPA", "DEFAULT_KAPPA_BITS", "weighted_median", "weighted_median_fixed", "clip_to_consensus",
    "compute_weight_consensus",
    # compat
    "UidRangeError", "EmitRows", "ProcessedWeights", "ValidatorWeights", "normalize_max_weight",
    "convert_weights_and_uids_for_emit", "u16_max_upscale", "process_weights", "convert_maybe_split_to_u16",
    "convert_weight_uids_and_vals_to_tensor", "convert_bond_uids_and_vals_to_tensor", "scores_to_weights",
    # fixed point
    "FRAC_BITS", "ONE", "I32F32_MAX", "I32F32_MIN", "fx_from_int", "fx_from_u16_proportion", "fx_to_u16",
    "fx_from_float", "fx_to_float", "fx_mul", "fx_mul_checked", "fx_div", "fx_saturating_div", "fx_div_checked",
    "fx_round", "fx_exp", "fx_safe_exp", "fx_exp_safe", "fx_normalize", "fx_row_normalize", "fx_col_normalize",
    "fx_col_max_upscale", "normalize_i64f64_to_i32f32", "fx_bonds_ema_alpha",
    # money
    "Token", "MDT", "Balance", "Rounding", "MIN_BALANCE", "MAX_BALANCE", "format_balance", "parse_balance",
    "mdt_to_wei", "wei_to_mdt", "validate_balance", "calculate_percentage", "sum_balances",
    "Apportionment", "EmissionSplit", "apportion", "split_emission", "distribute_emission", "sum_wei",
    # async layer (lazy)
    "EndpointError", "EndpointStatus", "EndpointInfo", "check_endpoint_health", "check_multiple_endpoints",
    "endpoint_infos_by_url", "RetryOptions", "retry_async", "retry_sync", "CircuitState", "CircuitBreakerStats",
    "CircuitBreaker", "Endpoint", "DEFAULT_PORTS", "parse_endpoint", "format_url", "is_port_open",
    "is_port_open_async", "wait_for_service", "get_local_ip", "MISSING", "CacheStats", "QueryCacheStats",
    "LRUCache", "QueryCache", "query_cache", "BatchProcessor", "BatchResultError", "ConnectionPool", "PoolStats",
    "TaskResult", "AsyncTaskPool", "ThreadPoolExecutor", "ExecutorStats", "ParallelProcessor", "AsyncRateLimiter",
    "WorkQueue", "gather_with_concurrency", "run_with_timeout", "optimize_async_loop", "run_async",
    # memory (lazy)
    "MemoryStats", "CudaMemory", "get_memory_stats", "MemoryMonitor", "memory_monitor", "ObjectPool",
    "optimize_gc", "force_gc", "profile_memory_usage", "get_object_size", "optimize_data_structure",
    # weight feeder (lazy)
    "fetch_weight_stack", "WeightFeed", "WeightBatch", "EndpointReport", "RowStatus", "FeedIncompleteError",
    "serve_weights", "WeightServer",
}


def test_all_is_pinned_and_has_no_duplicates() -> None:
    assert len(mt.__all__) == len(set(mt.__all__))
    assert set(mt.__all__) == EXPECTED


def test_every_public_name_resolves_and_nothing_leaks() -> None:
    for name in mt.__all__:
        assert getattr(mt, name) is not None, name
    assert "annotations" not in mt.__all__
    assert not hasattr(mt, "annotations")


def test_one_definition_of_each_constant() -> None:
    from mdt_tensor import _constants

    assert mt.U16_MAX is _constants.U16_MAX and mt.fixed.U16_MAX is _constants.U16_MAX
    assert mt.WEI_PER_MDT is _constants.WEI_PER_MDT


def test_lazy_names_come_from_their_packages() -> None:
    import mdt_tensor.aio as aio

    for name, package in mt._LAZY_NAMES.items():
        assert name in importlib.import_module(f"mdt_tensor.{package}").__all__, (name, package)
    assert set(aio.__all__) - set(mt._AIO_NAMES) <= set(mt.errors.__all__)  # the rest are errors, served eagerly


def test_import_loads_no_async_dependencies() -> None:
    probe = (
        "import sys, mdt_tensor as mt\n"
        "heavy = [m for m in ('aiohttp', 'tenacity', 'psutil') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "mt.CircuitBreaker\n"  # first use loads the async layer
        "assert 'aiohttp' in sys.modules and 'tenacity' in sys.modules\n"
        "mt.get_memory_stats\n"
        "assert 'psutil' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=ROOT)
