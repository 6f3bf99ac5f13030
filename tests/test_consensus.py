"""Stake-weighted median and stack consensus, against a transcription of the chain's quickselect."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import mdt_tensor as mt
from mdt_tensor._cpu import cpu_engine
from mdt_tensor.errors import DTypeError, ShapeError, ValueRangeError
from tests.helpers import ARRAY_KINDS, DEVICES, assert_kind, to_kind, to_numpy
from tests.chain import yuma_reference as chain

ONE = 1 << 32
#: The numpy engine runs on CPU tensors; the torch engine is the one GPUs use. Both are checked.
ENGINES = ("numpy", "torch")


#: ``with engine("numpy")`` forces the numpy CPU kernels, ``with engine("torch")`` the torch path.
engine = cpu_engine


# ----------------------------------------------------------------------------- the chain, in Python


# The chain's quickselect and safe_div, transcribed once, in the epoch's reference.
chain_weighted_median = chain.weighted_median
chain_safe_div = chain.safe_div


def chain_weighted_median_col_sparse(stake: list[int], rows: list[list[int]], majority: int) -> list[int]:
    """``weighted_median_col_sparse`` with every cell present (a dense matrix given as rows)."""
    columns = len(rows[0]) if rows else 0
    return chain.weighted_median_col_sparse(stake, [list(enumerate(row)) for row in rows], columns, majority)


def fx(values: list[float]) -> list[int]:
    return [round(v * ONE) for v in values]


# ------------------------------------- the chain's unit-test vectors (pallets/subtensor/src/tests/math.rs)

M1 = [
    ([], [], 0.0),
    ([1.0], [1.0], 1.0),  # normalize([.51])
    ([0.49, 0.51], [0.5, 1.0], 1.0),
    ([0.51, 0.49], [0.5, 1.0], 0.5),
    ([0.49, 0.0, 0.51], [0.5, 0.7, 1.0], 1.0),
    ([0.49, 0.01, 0.5], [0.5, 0.7, 1.0], 0.7),
    ([0.49, 0.51, 0.0], [0.5, 0.7, 1.0], 0.7),
    ([0.0, 0.49, 0.0, 0.51, 0.0], [0.5, 0.5, 1.0, 1.0, 0.5], 1.0),
    ([0.2] * 5, [0.8, 0.2, 1.0, 0.6, 0.4], 0.6),
    ([0.1] * 10, [0.8, 0.8, 0.2, 0.2, 1.0, 1.0, 0.6, 0.6, 0.4, 0.4], 0.6),
]


@pytest.mark.parametrize("stake, score, expected", M1)
def test_m1_transcription_reproduces_the_chain_test(stake: list[float], score: list[float], expected: float) -> None:
    # the chain's unit test: minority = 1 - 0.51, partition [0, sum(stake)], stake not renormalised
    s, w = fx(stake), fx(score)
    got = chain_weighted_median(s, w, list(range(len(s))), ONE - fx([0.51])[0], 0, sum(s))
    assert got == (fx([expected])[0] if stake else 0)


@pytest.mark.parametrize("stake, score, expected", M1)
def test_m1_fixed(stake: list[float], score: list[float], expected: float) -> None:
    s, w = fx(stake), fx(score)
    kappa_bits = sum(s) - (ONE - fx([0.51])[0])  # so that minority = 1 - 0.51 exactly
    weights = torch.tensor(w, dtype=torch.int64).reshape(len(w), 1)
    got = mt.weighted_median_fixed(weights, torch.tensor(s, dtype=torch.int64), max(kappa_bits, 0), renormalize=False)
    assert got.tolist() == [fx([expected])[0] if stake else 0]


@pytest.mark.parametrize("stake, score, expected", M1)
def test_m1_float(stake: list[float], score: list[float], expected: float) -> None:
    weights = torch.tensor(score, dtype=torch.float64).reshape(len(score), 1)
    got = mt.weighted_median(weights, torch.tensor(stake, dtype=torch.float64), 0.51)
    assert got.tolist() == [expected]


M2_W = [[0, 0.1, 0], [0, 0.2, 0.4], [0, 0.3, 0.1], [0, 0.4, 0.5]]
M2_CASES = [
    (M2_W, [0, 0.75, 0.25, 0], 0.24, [0, 0.3, 0.4]),
    (M2_W, [0, 0.75, 0.25, 0], 0.26, [0, 0.2, 0.4]),
    (M2_W, [0, 0.75, 0.25, 0], 0.76, [0, 0.2, 0.1]),
    ([[0, 0.1, 0], [0, 0.2, 0.4], [0, 0.3, 0.1], [0, 0, 0.5]], [0, 0.3, 0.2, 0.5], 0.51, [0, 0, 0.4]),
    (M2_W, [0, 0, 0, 0], 0.51, [0, 0, 0]),
]


@pytest.mark.parametrize("weights, stake, majority, expected", M2_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_m2_float(weights: list, stake: list, majority: float, expected: list, dtype: torch.dtype) -> None:
    got = mt.weighted_median(torch.tensor(weights, dtype=dtype), torch.tensor(stake), majority)
    assert got.dtype == dtype
    assert got.tolist() == torch.tensor(expected, dtype=dtype).tolist()


@pytest.mark.parametrize("weights, stake, majority, expected", M2_CASES)
def test_m2_fixed_and_transcription(weights: list, stake: list, majority: float, expected: list) -> None:
    w = [fx(row) for row in weights]
    s, k = fx(stake), fx([majority])[0]
    want = [fx([e])[0] for e in expected]
    assert chain_weighted_median_col_sparse(s, w, k) == want
    got = mt.weighted_median_fixed(torch.tensor(w), torch.tensor(s), k)
    assert got.tolist() == want


def test_empty_inputs() -> None:
    assert mt.weighted_median(torch.zeros(0, 3), torch.zeros(0)).tolist() == [0.0, 0.0, 0.0]
    assert mt.weighted_median(torch.zeros(4, 0), torch.ones(4)).shape == (0,)
    assert mt.weighted_median_fixed(torch.zeros(0, 2, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)).tolist() == [0, 0]


# ----------------------------------------------------------------------------- property tests


@st.composite
def fixed_cases(draw: st.DrawFn) -> tuple[list[int], list[list[int]], int]:
    rows = draw(st.integers(0, 9))
    columns = draw(st.integers(1, 5))
    pool = draw(st.lists(st.integers(0, ONE), min_size=1, max_size=4))  # few distinct values: ties
    weights = [[draw(st.sampled_from(pool + [0])) for _ in range(columns)] for _ in range(rows)]
    stake = [draw(st.one_of(st.just(0), st.integers(1, 2**40), st.just(-5))) for _ in range(rows)]
    mode = draw(st.sampled_from(["zero", "one", "random", "on_threshold", "default"]))
    if mode == "zero":
        kappa = 0
    elif mode == "one":
        kappa = ONE
    elif mode == "default":
        kappa = mt.DEFAULT_KAPPA_BITS
    elif mode == "random":
        kappa = draw(st.integers(0, ONE))
    else:  # kappa equal to a partial sum of the renormalised stake: sums land on the threshold
        positive = [v for v in stake if v > 0]
        total = sum(positive)
        shares = [chain_safe_div(v, total) for v in positive] if total else []
        cut = draw(st.integers(0, len(shares)))
        kappa = min(sum(shares[:cut]), ONE)
    return stake, weights, kappa


@given(fixed_cases())
def test_fixed_matches_the_chain_quickselect(case: tuple[list[int], list[list[int]], int]) -> None:
    stake, weights, kappa = case
    columns = len(weights[0]) if weights else 1
    w = torch.tensor(weights, dtype=torch.int64).reshape(len(stake), columns)
    # negative stake rows are dropped by the chain like zero-stake rows (s > 0 filter)
    want = chain_weighted_median_col_sparse(stake, weights, kappa) if weights else [0] * columns
    for name in ENGINES:
        with engine(name):
            got = mt.weighted_median_fixed(w, torch.tensor(stake, dtype=torch.int64).reshape(len(stake)), kappa)
        assert got.tolist() == want, name


@given(fixed_cases(), st.randoms(use_true_random=False))
def test_fixed_permutation_invariance(case: tuple[list[int], list[list[int]], int], rng) -> None:
    stake, weights, kappa = case
    assume(weights)
    order = list(range(len(stake)))
    rng.shuffle(order)
    w = torch.tensor(weights, dtype=torch.int64)
    s = torch.tensor(stake, dtype=torch.int64)
    base = mt.weighted_median_fixed(w, s, kappa)
    # renormalised stake shares do not depend on order (each is safe_div(s_i, sum)); the sum
    # of shares does not either, so the result is permutation invariant bit for bit
    assert torch.equal(base, mt.weighted_median_fixed(w[order], s[order], kappa))


@st.composite
def float_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    rows = draw(st.integers(1, 8))
    columns = draw(st.integers(1, 6))
    pool = draw(st.lists(st.floats(0, 1, width=32), min_size=1, max_size=5))
    weights = np.array([[draw(st.sampled_from(pool)) for _ in range(columns)] for _ in range(rows)], np.float32)
    stake = np.array([draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 10.0])) for _ in range(rows)])
    return weights, stake


def reference_float(weights: np.ndarray, stake: np.ndarray, kappa: float) -> np.ndarray:
    """Per-column loop: the largest value whose stake at or above it reaches kappa of the total
    (integer stakes: the sums are exact)."""
    keep = stake > 0
    out = np.zeros(weights.shape[1], dtype=weights.dtype)
    if not keep.any():
        return out
    w, s = weights[keep], stake[keep]
    for j in range(weights.shape[1]):
        candidates = [p for p in sorted(set(w[:, j].tolist())) if s[w[:, j] >= p].sum() >= kappa * s.sum()]
        out[j] = max(candidates) if candidates else w[:, j].min()
    return out


@given(float_cases(), st.sampled_from([0.0, 0.2, DEFAULT := mt.DEFAULT_KAPPA, 0.75, 0.9]))
def test_float_matches_a_per_column_loop(case: tuple[np.ndarray, np.ndarray], kappa: float) -> None:
    # integer stakes: float sums are exact, thresholds on partial sums included
    weights, stake = case
    for name in ENGINES:
        with engine(name):
            got = mt.weighted_median(weights, stake, kappa)
        np.testing.assert_array_equal(got, reference_float(weights, stake, kappa), err_msg=name)


@given(float_cases(), st.sampled_from([0.0, 0.2, mt.DEFAULT_KAPPA, 0.75, 0.9]), st.booleans())
def test_float64_matches_a_per_column_loop(case: tuple[np.ndarray, np.ndarray], kappa: float, signed_zero: bool) -> None:
    # float64 weights take their own sorts (argsort on the CPU, one sort with a sentinel on torch)
    weights, stake = case
    weights = weights.astype(np.float64)
    if signed_zero:
        weights[weights == 0] = -0.0  # equal to +0.0: same consensus
    for name in ENGINES:
        with engine(name):
            got = mt.weighted_median(weights, stake, kappa)
        np.testing.assert_array_equal(got, reference_float(weights, stake, kappa), err_msg=name)


@given(float_cases())
def test_result_is_in_the_column_value_set_and_kappa_zero_is_the_max(case: tuple[np.ndarray, np.ndarray]) -> None:
    weights, stake = case
    keep = stake > 0
    got = mt.weighted_median(weights, stake)
    top = mt.weighted_median(weights, stake, 0.0)
    for j in range(weights.shape[1]):
        if keep.any():
            assert got[j] in set(weights[keep, j].tolist())
            assert top[j] == weights[keep, j].max()
        else:
            assert got[j] == 0 and top[j] == 0


@given(float_cases(), st.randoms(use_true_random=False))
def test_float_permutation_invariance(case: tuple[np.ndarray, np.ndarray], rng) -> None:
    weights, stake = case
    order = list(range(len(stake)))
    rng.shuffle(order)
    np.testing.assert_array_equal(mt.weighted_median(weights, stake), mt.weighted_median(weights[order], stake[order]))


def test_batch_equals_loop_of_singles() -> None:
    generator = torch.Generator().manual_seed(0)
    weights = torch.randint(0, 6, (3, 4, 7, 11), generator=generator).float() / 5
    stakes = torch.randint(0, 4, (3, 4, 7), generator=generator).double()
    kappa = torch.tensor([0.0, 0.3, 0.5, 1.0]).double()
    got = mt.weighted_median(weights, stakes, kappa)
    for a in range(3):
        for b in range(4):
            assert torch.equal(got[a, b], mt.weighted_median(weights[a, b], stakes[a, b], float(kappa[b])))
    bits = mt.fx_from_float(weights.double())
    stake_bits = torch.randint(0, 2**36, (3, 4, 7), generator=generator)
    got_fixed = mt.weighted_median_fixed(bits, stake_bits, mt.DEFAULT_KAPPA_BITS)
    for a in range(3):
        for b in range(4):
            assert torch.equal(got_fixed[a, b], mt.weighted_median_fixed(bits[a, b], stake_bits[a, b]))


@pytest.mark.parametrize("name", ENGINES)
def test_engines_agree_on_large_random_batches(name: str) -> None:
    generator = torch.Generator().manual_seed(4)
    weights = (torch.rand(3, 40, 700, generator=generator) * 8).floor() / 8  # many ties
    stakes = torch.rand(3, 40, generator=generator).double()
    stakes[:, ::3] = 0
    bits = mt.fx_from_float(weights.double())
    stake_bits = mt.normalize_i64f64_to_i32f32(torch.randint(0, 2**40, (3, 40), generator=generator))
    with engine("numpy"):
        floats, fixed = mt.weighted_median(weights, stakes), mt.weighted_median_fixed(bits, stake_bits)
    with engine(name):
        assert torch.equal(floats, mt.weighted_median(weights, stakes))
        assert torch.equal(fixed, mt.weighted_median_fixed(bits, stake_bits))
        assert torch.equal(floats.double(), mt.weighted_median(weights.double(), stakes))


def test_weights_broadcast_over_stake_batches() -> None:
    weights = torch.rand(6, 9, generator=torch.Generator().manual_seed(1))
    stakes = torch.rand(4, 6, generator=torch.Generator().manual_seed(2))
    got = mt.weighted_median(weights, stakes)
    assert got.shape == (4, 9)
    for b in range(4):
        assert torch.equal(got[b], mt.weighted_median(weights, stakes[b]))


def test_kappa_per_batch_broadcasts() -> None:
    weights = torch.rand(6, 9, generator=torch.Generator().manual_seed(1))
    stakes = torch.rand(6, generator=torch.Generator().manual_seed(2))
    kappas = torch.tensor([0.0, 0.5, 1.0])
    got = mt.weighted_median(weights, stakes, kappas)
    assert got.shape == (3, 9)
    for i, kappa in enumerate(kappas.tolist()):
        assert torch.equal(got[i], mt.weighted_median(weights, stakes, kappa))
    with pytest.raises(ShapeError, match="kappa"):
        mt.weighted_median(weights.expand(2, 6, 9), stakes, kappas)


def test_stakes_broadcast_over_leading_dims() -> None:
    weights = torch.rand(5, 6, 9, generator=torch.Generator().manual_seed(1))
    stakes = torch.rand(6, generator=torch.Generator().manual_seed(2))
    got = mt.weighted_median(weights, stakes)
    assert got.shape == (5, 9)
    assert torch.equal(got[3], mt.weighted_median(weights[3], stakes))


def test_float_and_fixed_agree_on_well_separated_values() -> None:
    # distinct values, random integer stakes: no stake sum lands within float error of kappa
    generator = torch.Generator().manual_seed(5)
    values = torch.randperm(100_000, generator=generator)[: 64 * 40].reshape(64, 40).double() / 100_000
    stakes = torch.randint(1, 1000, (64,), generator=generator).double()
    stakes[::7] = 0
    for kappa_u16 in (0, 16384, 32767, 52428, 65535):
        floats = mt.weighted_median(values, stakes, kappa_u16 / 65535)
        kappa_bits = (kappa_u16 << 32) // 65535
        fixed = mt.weighted_median_fixed(mt.fx_from_float(values), mt.fx_from_float(stakes), kappa_bits)
        assert torch.equal(mt.fx_from_float(floats), fixed)


def test_fallback_paths_match_the_packed_path() -> None:
    generator = torch.Generator().manual_seed(9)
    weights = torch.randint(0, 5, (2, 9, 13), generator=generator)
    stakes = torch.randint(0, 3, (2, 9), generator=generator).double()
    packed = mt.weighted_median(weights.float(), stakes)
    fallback = mt.weighted_median(weights.double(), stakes)  # float64: index sort
    assert torch.equal(packed.double(), fallback)
    bits = weights * ONE
    wide = bits.clone()
    wide[0, 0, 0] = -(2**62)  # a value range too wide to pack with the row index
    stake_bits = torch.randint(1, ONE, (2, 9), generator=generator)
    stake_bits[:, 0] = 0  # the wide value sits in an excluded row, so results agree
    assert torch.equal(mt.weighted_median_fixed(bits, stake_bits), mt.weighted_median_fixed(wide, stake_bits))


def test_negative_zero_equals_zero() -> None:
    weights = torch.tensor([[-0.0], [0.0], [0.5]])
    assert mt.weighted_median(weights, torch.tensor([1.0, 1.0, 1.0]), 0.5).tolist() == [0.0]


# ----------------------------------------------------------------------------- errors


def test_bad_inputs() -> None:
    w, s = torch.rand(4, 3), torch.rand(4)
    with pytest.raises(ValueRangeError, match=r"weights.*nan.*\(1, 2\)"):
        bad = w.clone()
        bad[1, 2] = math.nan
        mt.weighted_median(bad, s)
    with pytest.raises(ValueRangeError, match="weights.*non-negative"):
        mt.weighted_median(-w, s)
    with pytest.raises(ValueRangeError, match="weights.*finite"):
        mt.weighted_median(w.masked_fill(w > 0.5, math.inf), s)
    with pytest.raises(ValueRangeError, match="stakes.*non-negative"):
        mt.weighted_median(w, -s)
    with pytest.raises(ShapeError, match=r"stakes.*V = 4"):
        mt.weighted_median(w, torch.rand(3))
    with pytest.raises(ShapeError, match=r"\(\*, V, N\)"):
        mt.weighted_median(torch.rand(4), s)
    with pytest.raises(ValueRangeError, match="kappa"):
        mt.weighted_median(w, s, 1.5)
    with pytest.raises(ValueRangeError, match="kappa"):
        mt.weighted_median(w, s, torch.tensor(-0.1))
    with pytest.raises(ValueRangeError, match="kappa_bits"):
        mt.weighted_median_fixed(torch.zeros(2, 2, dtype=torch.int64), torch.ones(2, dtype=torch.int64), ONE + 1)
    with pytest.raises(DTypeError, match="weight_bits"):
        mt.weighted_median_fixed(torch.zeros(2, 2), torch.ones(2, dtype=torch.int64))
    with pytest.raises(ShapeError, match="broadcast"):
        mt.weighted_median(torch.rand(2, 4, 3), torch.rand(3, 4))


# ----------------------------------------------------------------------------- kinds and devices


@pytest.mark.parametrize("kind", ARRAY_KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kind_and_dtype_out_equal_in(kind: str, dtype: type) -> None:
    device = "cuda" if kind == "cupy" else "cpu"
    weights = to_kind(np.random.default_rng(0).random((5, 7)).astype(dtype), kind, device)
    stakes = to_kind(np.arange(5, dtype=np.float64), kind, device)
    got = mt.weighted_median(weights, stakes)
    assert_kind(got, kind, device)
    assert to_numpy(got).dtype == dtype
    clipped = mt.clip_to_consensus(weights, got)
    assert_kind(clipped, kind, device)


@pytest.mark.parametrize("kind", ARRAY_KINDS)
@pytest.mark.parametrize("method", ["mean", "median", "max", "min", "stake_median"])
def test_stack_consensus_kind_out_equals_in(kind: str, method: str) -> None:
    device = "cuda" if kind == "cupy" else "cpu"
    stack = to_kind(STACK, kind, device)
    stakes = to_kind(np.arange(1.0, 6.0), kind, device)
    got = mt.compute_weight_consensus(stack, method, stakes=stakes if method == "stake_median" else None)
    assert_kind(got, kind, device)
    assert to_numpy(got).shape == (4, 6) and to_numpy(got).dtype == np.float32


@pytest.mark.parametrize("kind", ARRAY_KINDS)
def test_fixed_kind_out_equals_in(kind: str) -> None:
    device = "cuda" if kind == "cupy" else "cpu"
    bits = to_kind(np.array([[1, 5], [3, 2], [2, 9]], dtype=np.int64) << 30, kind, device)
    stake_bits = to_kind(np.array([1, 1, 2], dtype=np.int64) << 30, kind, device)
    got = mt.weighted_median_fixed(bits, stake_bits)
    assert_kind(got, kind, device)
    assert to_numpy(got).tolist() == [2 << 30, 9 << 30]  # 9 holds half the stake


def test_half_precision_and_integer_weights() -> None:
    weights = torch.tensor([[0.25, 0.5], [0.75, 0.125]], dtype=torch.float16)
    got = mt.weighted_median(weights, torch.tensor([1.0, 2.0]))
    assert got.dtype == torch.float16 and got.tolist() == [0.75, 0.125]
    u16 = torch.tensor([[100, 65535], [200, 0]], dtype=torch.int32)
    assert mt.weighted_median(u16, torch.tensor([1.0, 2.0])).tolist() == [200.0, 0.0]
    assert mt.weighted_median(torch.tensor([[0.3, 0.7]]), torch.tensor([5.0])).tolist() == pytest.approx([0.3, 0.7])


@pytest.mark.parametrize("device", DEVICES)
def test_cpu_and_device_agree_bit_for_bit(device: str) -> None:
    generator = torch.Generator().manual_seed(11)
    weights = torch.rand(3, 64, 300, generator=generator)
    stakes = torch.rand(3, 64, generator=generator).double()
    stakes[:, ::5] = 0
    cpu = mt.weighted_median(weights, stakes)
    assert torch.equal(cpu, mt.weighted_median(weights.to(device), stakes.to(device)).cpu())
    bits = mt.fx_from_float(weights.double())
    stake_bits = mt.normalize_i64f64_to_i32f32(torch.randint(0, 2**50, (3, 64), generator=generator))
    cpu_fixed = mt.weighted_median_fixed(bits, stake_bits)
    assert torch.equal(cpu_fixed, mt.weighted_median_fixed(bits.to(device), stake_bits.to(device)).cpu())


@pytest.mark.parametrize("device", DEVICES)
def test_float64_cpu_and_device_agree(device: str) -> None:
    # the CPU's argsort engine and the device's one sort with a sentinel pick the same values
    generator = torch.Generator().manual_seed(12)
    weights = (torch.rand(4, 96, 200, generator=generator, dtype=torch.float64) * 32).floor() / 32  # ties
    stakes = torch.randint(0, 5, (4, 96), generator=generator).double()
    for kappa in (0.0, mt.DEFAULT_KAPPA, 1.0):
        cpu = mt.weighted_median(weights, stakes, kappa)
        assert torch.equal(cpu, mt.weighted_median(weights.to(device), stakes.to(device), kappa).cpu())


# ----------------------------------------------------------------------------- clip and stacks


def test_clip_to_consensus() -> None:
    weights = torch.tensor([[[0.1, 0.9], [0.4, 0.2]], [[0.5, 0.5], [0.0, 1.0]]])
    consensus = torch.tensor([[0.3, 0.5], [0.2, 0.6]])
    expected = torch.minimum(weights, consensus[:, None, :])
    assert torch.equal(mt.clip_to_consensus(weights, consensus), expected)
    bits = mt.fx_from_float(weights.double())
    clipped = mt.clip_to_consensus(bits, mt.fx_from_float(consensus.double()))
    assert clipped.dtype == torch.int64
    with pytest.raises(ShapeError, match="consensus"):
        mt.clip_to_consensus(weights, torch.rand(3))


STACK = np.random.default_rng(3).random((5, 4, 6)).astype(np.float32)


@pytest.mark.parametrize(
    "method, reference",
    [("mean", np.mean), ("max", np.max), ("min", np.min), ("median", np.median)],
)
@pytest.mark.parametrize("count", [4, 5])
def test_stack_methods_match_numpy(method: str, reference, count: int) -> None:
    stack = STACK[:count]
    np.testing.assert_allclose(mt.compute_weight_consensus(stack, method), reference(stack, axis=0), rtol=1e-6)
    as_list = [stack[i] for i in range(count)]
    np.testing.assert_allclose(mt.compute_weight_consensus(as_list, method), reference(stack, axis=0), rtol=1e-6)
    moved = np.moveaxis(stack, 0, 2)
    np.testing.assert_allclose(mt.compute_weight_consensus(moved, method, dim=2), reference(stack, axis=0), rtol=1e-6)
    np.testing.assert_allclose(mt.compute_weight_consensus(moved, method, dim=-1), reference(stack, axis=0), rtol=1e-6)


@pytest.mark.parametrize("count", [1, 2, 3, 8, 16, 17, 32, 33, 40, 96, 97, 130])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_is_bitwise_np_median(count: int, dtype: type) -> None:
    # both numpy kernels (chosen by count on the CPU) and the sort path alike; ties from a coarse grid
    stack = (np.random.default_rng(count).integers(0, 7, (count, 3, 50)) / 7).astype(dtype)
    got = mt.compute_weight_consensus(stack, "median")
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.median(stack, axis=0))
    with engine("torch"):
        np.testing.assert_array_equal(
            mt.compute_weight_consensus(torch.from_numpy(stack), "median").numpy(), np.median(stack, axis=0)
        )
    with engine("numpy"):
        np.testing.assert_array_equal(
            mt.compute_weight_consensus(torch.from_numpy(stack), "median").numpy(), np.median(stack, axis=0)
        )


@pytest.mark.parametrize("kernel", ["network", "partition"])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 16, 33, 64, 65])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_stack_median_kernel_is_bitwise_np_median(kernel: str, count: int, dtype: type) -> None:
    # each kernel at every count, over several blocks and a ragged last one; ties, infinities, NaN
    from mdt_tensor._cpu import stack_median

    rng = np.random.default_rng(count)
    stack = (rng.integers(-3, 4, (count, 5, 1100)) / 7).astype(dtype)
    stack[0, 0, :3] = np.inf
    stack[-1, 1, :3] = -np.inf
    stack[count // 2, 2, 5] = np.nan
    stack[:, 3, 7] = np.finfo(dtype).max  # an even count's a + b overflows here
    with np.errstate(over="ignore"):
        expected = np.median(stack, axis=0)
    expected[3, 7] = np.finfo(dtype).max  # where np.median's sum overflows to inf, ours stays finite
    got = stack_median.stack_median_numpy(torch.from_numpy(stack), 0, kernel).numpy()  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, expected)
    moved = np.moveaxis(stack, 0, 1).copy()
    got_moved = stack_median.stack_median_numpy(torch.from_numpy(moved), 1, kernel).numpy()  # type: ignore[arg-type]
    np.testing.assert_array_equal(got_moved, expected)


def test_stack_median_partition_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # blocks of one column and tasks of a few columns: every boundary case of the partition kernel
    from mdt_tensor._cpu import stack_median

    monkeypatch.setattr(stack_median, "PARTITION_BLOCK_BYTES", 1)
    monkeypatch.setattr(stack_median, "PARTITION_TASK", 3)
    stack = np.random.default_rng(9).random((6, 4, 5)).astype(np.float32)
    got = stack_median.stack_median_numpy(torch.from_numpy(stack), 0, "partition").numpy()
    np.testing.assert_array_equal(got, np.median(stack, axis=0))


def test_median_even_count_averages_the_middle_pair_exactly() -> None:
    stack = np.array([[1.0], [2.0], [4.0], [8.0]], dtype=np.float32)
    assert mt.compute_weight_consensus(stack, "median").tolist() == [3.0]


def test_stake_median_stack() -> None:
    stakes = np.array([1.0, 2.0, 0.0, 4.0, 1.0])
    got = mt.compute_weight_consensus(STACK, "stake_median", stakes=stakes, kappa=0.4)
    want = mt.weighted_median(STACK.reshape(5, -1), stakes, 0.4).reshape(4, 6)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ShapeError, match="stakes"):
        mt.compute_weight_consensus(STACK, "stake_median")
    with pytest.raises(ShapeError, match="stakes"):
        mt.compute_weight_consensus(STACK, "stake_median", stakes=np.ones(3))


def test_stack_errors() -> None:
    with pytest.raises(ValueRangeError, match="method"):
        mt.compute_weight_consensus(STACK, "mode")  # type: ignore[arg-type]
    with pytest.raises(ValueRangeError, match="nan"):
        bad = STACK.copy()
        bad[1, 2, 3] = np.nan
        mt.compute_weight_consensus(bad, "median")
    with pytest.raises(ShapeError, match=r"stack\[1\]"):
        mt.compute_weight_consensus([STACK[0], STACK[1, :2]], "mean")
    with pytest.raises(ShapeError, match="dim"):
        mt.compute_weight_consensus(STACK, "mean", dim=3)
