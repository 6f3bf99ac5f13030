"""Memory utilities: stats, monitor, object pool, GC, profiling, sizes (spec seed-utils 1.5, defect 21)."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import tracemalloc
import weakref
from collections import OrderedDict, namedtuple
from collections.abc import Iterator
from typing import Any

import numpy as np
import psutil
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mdt_tensor.errors import DTypeError, ValueRangeError
from mdt_tensor.memory import (
    PRESSURE_THRESHOLD,
    MemoryMonitor,
    MemoryStats,
    ObjectPool,
    force_gc,
    get_memory_stats,
    get_object_size,
    memory_monitor,
    optimize_data_structure,
    optimize_gc,
    profile_memory_usage,
    restore_gc,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def gc_state() -> Iterator[None]:
    """Whatever a test does to the collector is undone."""
    threshold = gc.get_threshold()
    enabled = gc.isenabled()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()
    if enabled:
        gc.enable()


# --- stats ---------------------------------------------------------------------------------------

def test_defect21_percent_is_the_systems_memory_pressure() -> None:
    stats = get_memory_stats()
    system = psutil.virtual_memory()
    assert stats.percent_used == stats.system_percent
    assert abs(stats.system_percent - system.percent) < 2.0  # the system's figure, read a moment apart
    expected = 100.0 * (stats.system_total_bytes - stats.system_available_bytes) / stats.system_total_bytes
    assert abs(stats.system_percent - expected) < 2.0
    assert stats.used_bytes == stats.system_total_bytes - stats.system_available_bytes
    assert stats.process_percent == pytest.approx(100.0 * stats.process_rss_bytes / stats.system_total_bytes)


def test_process_figures_are_this_process() -> None:
    before = get_memory_stats().process_rss_bytes
    block = np.ones(48 * 2**20, dtype=np.uint8)  # touched pages: resident
    after = get_memory_stats().process_rss_bytes
    assert after - before >= 40 * 2**20
    del block
    stats = get_memory_stats()
    assert 0 < stats.process_rss_bytes <= stats.process_vms_bytes
    assert stats.process_rss_bytes < stats.system_total_bytes


def test_stats_never_walk_the_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden() -> list[Any]:
        raise AssertionError("get_memory_stats walked the heap")

    monkeypatch.setattr(gc, "get_objects", forbidden)
    stats = get_memory_stats()
    assert stats.gc_threshold == gc.get_threshold()
    assert len(stats.gc_collections) == 3 and set(stats.gc_stats) == {"pending", "collections", "threshold"}


def test_no_cuda_figures_unless_cuda_is_in_use() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        pytest.skip("CUDA is in use in this process")
    assert get_memory_stats().cuda == ()
    assert get_memory_stats(devices=[]).cuda == ()


# --- monitor -------------------------------------------------------------------------------------

def _thresholds_around(on: str) -> tuple[float, float, float]:
    """(below, current, above): percentages that put the current figure on each side."""
    current = get_memory_stats().percent(on)
    return max(current / 4, 1e-6), current, min(100.0, current * 2 + 1)


def test_monitor_levels_are_inclusive() -> None:
    monitor = MemoryMonitor(warning=50.0, critical=70.0)
    assert [monitor.classify(p) for p in (49.9, 50.0, 69.9, 70.0, 100.0)] == ["ok", "warning", "warning", "critical", "critical"]


@pytest.mark.parametrize("on", ["system", "process"])
def test_monitor_calls_back_with_stats_and_level(on: str) -> None:
    below, _, above = _thresholds_around(on)
    calls: list[tuple[MemoryStats, str]] = []
    warn = MemoryMonitor(warning=below, critical=above, on=on, collect_on_critical=False)
    warn.add_callback(lambda stats, level: calls.append((stats, level)))
    stats = warn.check()
    assert calls == [(stats, "warning")] and warn.level == "warning" and warn.get_last_stats() is stats

    calm = MemoryMonitor(warning=above, critical=above, on=on)
    calm.add_callback(lambda stats, level: calls.append((stats, level)))
    calm.check()
    assert len(calls) == 1 and calm.level == "ok"


def test_critical_runs_callbacks_then_collects() -> None:
    below, _, _ = _thresholds_around("system")
    order: list[str] = []
    monitor = MemoryMonitor(warning=below, critical=below)
    monitor.add_callback(lambda stats, level: order.append(level))
    monitor.check()
    assert order == ["critical"]
    assert monitor.last_collected is not None and set(monitor.last_collected) >= {"gen0", "gen1", "gen2"}


def test_defect21_one_argument_callback_is_refused_when_added() -> None:
    monitor = MemoryMonitor()
    with pytest.raises(DTypeError, match="stats, level"):
        monitor.add_callback(lambda stats: None)  # the original docstring's example

    async def coroutine_callback(stats: MemoryStats, level: str) -> None:
        pass

    with pytest.raises(DTypeError):
        monitor.add_callback(coroutine_callback)  # type: ignore[arg-type]


def test_a_failing_callback_is_logged_and_the_others_run(caplog: pytest.LogCaptureFixture) -> None:
    below, _, above = _thresholds_around("system")
    seen: list[str] = []
    monitor = MemoryMonitor(warning=below, critical=above)

    def broken(stats: MemoryStats, level: str) -> None:
        raise RuntimeError("boom")

    monitor.add_callback(broken)
    monitor.add_callback(lambda stats, level: seen.append(level))
    with caplog.at_level(logging.ERROR):
        monitor.check()
    assert seen == ["warning"] and "boom" in caplog.text


@pytest.mark.parametrize(
    "kwargs",
    [dict(warning=0.0), dict(warning=90.0, critical=80.0), dict(critical=101.0), dict(on="gpu"), dict(on="cuda:99"),
     dict(warning=float("nan"))],
)
def test_monitor_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueRangeError, DTypeError)):
        MemoryMonitor(**kwargs)


def test_module_level_monitor_watches_the_system() -> None:
    assert (memory_monitor.warning_threshold, memory_monitor.critical_threshold, memory_monitor.on) == (80.0, 90.0, "system")


async def test_background_polling_starts_and_stops_without_leaking_a_task() -> None:
    below, _, above = _thresholds_around("system")
    monitor = MemoryMonitor(warning=below, critical=above)
    checks = asyncio.Event()
    count = [0]

    def on_level(stats: MemoryStats, level: str) -> None:
        count[0] += 1
        if count[0] >= 3:
            checks.set()

    monitor.add_callback(on_level)
    task = monitor.start(interval=0.005)
    with pytest.raises(RuntimeError, match="already"):
        monitor.start(interval=0.005)
    async with asyncio.timeout(5):
        await checks.wait()
    await monitor.stop()
    assert task.done() and not monitor.running
    assert asyncio.all_tasks() == {asyncio.current_task()}
    await monitor.stop()  # a second stop is a no-op
    async with monitor.polling(0.005):
        assert monitor.running
    assert not monitor.running and asyncio.all_tasks() == {asyncio.current_task()}


def test_start_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        MemoryMonitor().start(1.0)


# --- object pool ---------------------------------------------------------------------------------

@pytest.mark.parametrize("factory", [dict, list, set, bytearray])
def test_defect21_pool_takes_builtin_objects_and_returns_them_empty(factory: Any) -> None:
    pool: ObjectPool[Any] = ObjectPool(factory, max_size=2)
    obj = pool.acquire()
    if isinstance(obj, dict):
        obj["k"] = 1
    elif isinstance(obj, set):
        obj.add(1)
    else:
        obj.append(1)
    pool.release(obj)
    again = pool.acquire()
    assert again is obj and len(again) == 0
    assert pool.get_stats() == {"available": 0, "active": 1, "max_size": 2}


def test_pool_refuses_double_and_foreign_release() -> None:
    pool: ObjectPool[list[int]] = ObjectPool(list)
    obj = pool.acquire()
    pool.release(obj)
    with pytest.raises(ValueRangeError, match="released twice"):
        pool.release(obj)
    with pytest.raises(ValueRangeError):
        pool.release([])


def test_pool_keeps_at_most_max_size_and_uses_a_custom_reset() -> None:
    resets: list[int] = []
    pool: ObjectPool[list[int]] = ObjectPool(list, max_size=1, reset=lambda obj: resets.append(len(obj)))
    a, b = pool.acquire(), pool.acquire()
    a.append(5)
    pool.release(a)
    pool.release(b)  # no room: dropped without a reset
    assert resets == [1] and pool.stats().available == 1 and pool.stats().created == 2
    assert pool.acquire() is a and a == [5]  # the custom reset did not clear it
    pool.clear()
    assert pool.stats().available == 0


def test_borrowed_gives_the_object_back_when_the_block_raises() -> None:
    pool: ObjectPool[dict[str, int]] = ObjectPool(dict)
    with pytest.raises(KeyError):
        with pool.borrowed() as obj:
            raise KeyError("x")
    assert pool.stats().active == 0 and pool.acquire() is obj


def test_pool_is_thread_safe() -> None:
    pool: ObjectPool[list[int]] = ObjectPool(list, max_size=16)
    errors: list[str] = []

    def work(me: int) -> None:
        for _ in range(300):
            with pool.borrowed() as scratch:
                scratch.append(me)
                if scratch != [me]:  # another thread holds the same object
                    errors.append(f"{scratch}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = pool.stats()
    assert not errors and stats.active == 0 and stats.created <= 8 and stats.available == stats.created


# --- gc ------------------------------------------------------------------------------------------

class _Node:
    def __init__(self) -> None:
        self.me = self


def test_force_gc_collects_cycles_and_reports_them(gc_state: None) -> None:
    gc.disable()
    gc.collect()
    refs = []
    for _ in range(50):
        node = _Node()
        refs.append(weakref.ref(node))
    del node
    counts = force_gc()
    assert counts["gen0"] + counts["gen1"] + counts["gen2"] >= 50
    assert all(r() is None for r in refs)
    assert counts["cuda_released_bytes"] >= 0


def test_defect21_optimize_gc_never_raises_thresholds_under_pressure(gc_state: None) -> None:
    calm = optimize_gc(system_percent=10.0)
    assert calm.threshold == (700, 10, 10) and gc.get_threshold() == (700, 10, 10)
    gc.unfreeze()
    pressed = optimize_gc(system_percent=95.0, pressure=80.0)
    assert pressed.threshold == PRESSURE_THRESHOLD and PRESSURE_THRESHOLD[0] < 700
    assert gc.get_threshold()[0] < 700


def test_optimize_gc_freezes_the_heap_and_new_cycles_still_collect(gc_state: None) -> None:
    tuning = optimize_gc(system_percent=10.0)
    assert tuning.frozen == gc.get_freeze_count() > 1000
    ref = weakref.ref(_Node())
    gc.collect()
    assert ref() is None
    gc.set_threshold(1, 2, 3)
    restore_gc(tuning)
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == tuning.previous_threshold


def test_optimize_gc_without_freeze_freezes_nothing(gc_state: None) -> None:
    assert optimize_gc(freeze=False, system_percent=10.0).frozen == 0


# --- profiling -----------------------------------------------------------------------------------

def test_profile_sync_function_keeps_its_metadata_and_measures_the_peak() -> None:
    @profile_memory_usage
    def build(n: int) -> int:
        """Doc."""
        block = bytearray(n)
        return len(block)

    assert build(2_000_000) == 2_000_000
    assert build.__name__ == "build" and build.__doc__ == "Doc."
    assert 2_000_000 <= build.last_profile.python_peak_bytes < 3_000_000
    assert not tracemalloc.is_tracing()


async def test_defect21_profile_async_function_is_measured() -> None:
    reports: list[Any] = []

    @profile_memory_usage(report=reports.append)
    async def build(n: int) -> int:
        await asyncio.sleep(0)
        block = bytearray(n)
        await asyncio.sleep(0)
        return len(block)

    assert await build(1_000_000) == 1_000_000
    assert reports and reports[0] is build.last_profile and reports[0].python_peak_bytes >= 1_000_000


def test_profile_records_a_call_that_raises() -> None:
    @profile_memory_usage
    def fail() -> None:
        _ = bytearray(500_000)
        raise ValueError("no")

    with pytest.raises(ValueError):
        fail()
    assert fail.last_profile.python_peak_bytes >= 500_000


# --- sizes ---------------------------------------------------------------------------------------

def _reference_size(obj: Any, seen: set[int] | None = None) -> int:
    """Obviously correct for nested lists / dicts / tuples of ints and strings."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        return size + sum(_reference_size(k, seen) + _reference_size(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return size + sum(_reference_size(x, seen) for x in obj)
    return size


nested = st.recursive(
    st.integers(-1000, 10**12) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=30,
)


@given(nested)
def test_object_size_matches_a_recursive_reference(data: Any) -> None:
    assert get_object_size(data) == _reference_size(data)


def test_defect21_object_size_never_consumes_generators() -> None:
    gen = (i for i in range(5))
    it = iter([1, 2, 3])
    get_object_size({"g": gen, "i": it})
    assert list(gen) == [0, 1, 2, 3, 4] and list(it) == [1, 2, 3]


def test_defect21_arrays_and_tensors_by_their_buffer() -> None:
    header = sys.getsizeof(np.zeros(0))
    assert get_object_size(np.zeros(1000)) == header + 8000  # the original said 40 112
    base = np.zeros(1000)
    assert get_object_size([base, base[10:]]) == sys.getsizeof([base, base]) + 2 * header + 8000  # the view's base once
    t = torch.zeros(1000, dtype=torch.float64)
    one = get_object_size(t)
    assert 8000 <= one < 8000 + 1000
    assert get_object_size([t, t[10:]]) < one + 1000 + 100  # a view shares the buffer


def test_object_size_cycles_slots_and_deep_nesting() -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    assert get_object_size(cycle) == sys.getsizeof(cycle) + sys.getsizeof("self")

    class Slotted:
        __slots__ = ("payload",)

        def __init__(self) -> None:
            self.payload = b"x" * 10_000

    assert get_object_size(Slotted()) >= 10_000  # the original undercounted __slots__
    deep: list[Any] = []
    for _ in range(50_000):
        deep = [deep]
    assert get_object_size(deep) == 50_000 * sys.getsizeof([[]]) + sys.getsizeof([])  # no RecursionError


# --- optimize_data_structure ---------------------------------------------------------------------

def _thaw(x: Any) -> Any:
    if type(x) in (list, tuple):
        return [_thaw(i) for i in x]
    if type(x) in (set, frozenset):
        return {"set": sorted(map(repr, x))}
    if type(x) is dict:
        return {"dict": {repr(k): _thaw(v) for k, v in x.items()}}
    return x


def _is_compact(x: Any) -> bool:
    if type(x) in (list, set):
        return False
    if type(x) is tuple:
        return all(map(_is_compact, x))
    if type(x) is dict:
        return all(map(_is_compact, x.values()))
    return True


containers = st.recursive(
    st.integers() | st.text(max_size=4),
    lambda inner: (st.lists(inner, max_size=12) | st.tuples(inner, inner) | st.frozensets(st.integers(), max_size=4)
                   | st.sets(st.integers(), max_size=4) | st.dictionaries(st.integers(), inner, max_size=12)),
    max_leaves=40,
)


@given(containers)
def test_optimized_data_holds_the_same_values_in_compact_containers(data: Any) -> None:
    before = repr(data)
    out = optimize_data_structure(data)
    assert _thaw(out) == _thaw(data) and _is_compact(out)
    assert repr(data) == before  # the input is untouched


def test_defect21_large_dicts_and_tuples_are_converted_too() -> None:
    big = {i: [i] for i in range(20)}
    out = optimize_data_structure(big)
    assert out is not big and out == {i: (i,) for i in range(20)}
    assert optimize_data_structure((4, [5])) == (4, (5,))
    already = (1, (2, "x"))
    assert optimize_data_structure(already) is already


def test_other_objects_and_subclasses_come_back_as_they_are() -> None:
    Pair = namedtuple("Pair", "a b")
    pair, ordered, tensor = Pair([1], 2), OrderedDict(a=[1]), torch.zeros(2)
    for obj in (pair, ordered, tensor, "text", 3.5):
        assert optimize_data_structure(obj) is obj


def test_optimized_lists_take_no_more_memory() -> None:
    data = [list(range(i)) for i in range(1, 200)]
    for row in data:
        row.append(0)  # over-allocated lists, as lists that grew are
    assert get_object_size(optimize_data_structure(data)) < get_object_size(data)


def test_cycles_are_refused_with_their_path() -> None:
    loop: list[Any] = [1, {"k": []}]
    loop[1]["k"].append(loop)
    with pytest.raises(ValueRangeError, match=r"data\[1\]\['k'\]\[0\]"):
        optimize_data_structure(loop)


# --- CUDA ----------------------------------------------------------------------------------------

@pytest.mark.cuda
def test_cuda_figures_follow_the_allocator() -> None:
    before = get_memory_stats(devices=[0]).cuda[0]
    block = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda:0")
    during = get_memory_stats().cuda[0]
    assert during.allocated_bytes - before.allocated_bytes >= 64 * 2**20
    assert during.allocated_bytes <= during.reserved_bytes and during.free_bytes <= during.total_bytes
    assert 0 < during.percent_used <= 100
    del block
    released = force_gc()["cuda_released_bytes"]
    assert released >= 64 * 2**20 and get_memory_stats().cuda[0].reserved_bytes < during.reserved_bytes


@pytest.mark.cuda
def test_profile_reports_the_cuda_peak() -> None:
    @profile_memory_usage
    def scratch() -> float:
        x = torch.ones(8 * 2**20, device="cuda:0")  # 32 MiB
        return float(x.sum())

    torch.cuda.init()
    scratch()
    assert scratch.last_profile.cuda_peak_bytes[0] >= 32 * 2**20


@pytest.mark.cuda
def test_monitor_on_a_cuda_device() -> None:
    torch.cuda.init()
    below, _, above = _thresholds_around("cuda:0") if get_memory_stats(devices=[0]).cuda[0].percent_used > 0 else (1e-6, 0, 100)
    monitor = MemoryMonitor(warning=below, critical=above, on="cuda:0")
    stats = monitor.check()
    assert stats.cuda and stats.cuda[0].device == 0 and monitor.level in ("warning", "critical")
