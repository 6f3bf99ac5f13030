"""Independent, slow, pure-Python reference of the chain's sparse Yuma epoch.

This is a line-by-line transcription (in Python, with Python ints) of subtensor's production epoch
``epoch_mechanism`` (``pallets/subtensor/src/epoch/run_epoch/epoch_mechanism.rs``) and the math helpers
it calls (``epoch/math/*.rs``, ``run_epoch/bonds_ema_liquid_alpha.rs``,
``run_epoch/weights_bonds_loaders.rs``), plus ``substrate_fixed``'s ``exp`` used by the liquid-alpha
sigmoid.  Our notes on it: ``docs/design/yuma-epoch.md``.  It deliberately imports nothing from
``mdt_tensor``: the tensor epoch is tested against it.

Fixed-point values are Python ints holding the raw bits:

* I32F32: ``bits / 2**32`` (the type of every epoch vector and matrix);
* I64F64: ``bits / 2**64`` (stake normalisation, the bonds-moving-average ratio);
* I96F32: ``bits / 2**32`` (the rao emission product).

The rounding rules are those of ``substrate_fixed`` (``arith.rs``: ``mul_dir`` / ``div_dir``):
a product is ``(a*b) >> frac`` (arithmetic shift, i.e. floor); a quotient is ``(a << frac) / b``
truncated toward zero; ``saturating_*`` clamp to the type's range; ``checked_*`` report overflow;
``safe_div`` (subtensor's ``safe_math``) is ``checked_div(..).unwrap_or_default()``, i.e. 0 on a zero
divisor *and* on overflow; wider -> narrower fixed conversion drops low bits (floor); ``to_num`` floors.

Sparse matrices are lists of rows, each row a list of ``(j, bits)`` in ascending ``j``, exactly like the
chain's ``Vec<Vec<(u16, I32F32)>>``.  Everything is O(n^2) Python loops: clarity over speed.

Input conventions (documented choices where a dense input cannot express the chain's storage):

* ``weights`` is a dense ``n x n`` grid of the stored u16 values.  Every cell of a row is a stored
  ``(j, w)`` entry, explicit zeros included (what a validator listing every uid produces), unless
  ``weights_present[i][j]`` is False (``docs/design/yuma-epoch.md``, "Sparse and dense").
* ``bonds`` is a dense ``n x n`` grid of stored u16 bonds.  Only nonzero cells become stored entries.
  The chain can store explicit ``(j, 0)`` bonds (``fixed_proportion_to_u16`` of a tiny positive EMA
  value), but a zero-valued stored bond and an absent one give identical results in every bond path
  (column sums, EMAs and the liquid-alpha lookup all treat both as 0), so the choice is immaterial.
* Stake is raw integer stake; ``S'_i = stake_i`` (no root / tao weighting).  ``last_tempo = block - tempo``
  (the chain's value when ``LastMechansimStepBlock`` is 0).
* Commit-reveal (``RefParams.commit_reveal_weights_enabled``): ``commit_blocks[i]`` is validator i's
  earliest still-active commit block (what the chain finds by walking ``WeightCommits`` and
  ``TimelockedWeightCommits``), ``U64_MAX`` or None for "no active commit".
* Bond reset: ``do_reset_bonds`` mutates the stored bonds between epochs, as the chain's extrinsic path
  does (``ChainSim.reset_bonds``).
* ``owner_uid = -1`` means the subnet has no owner uid.

``RefParams.path = "dense"`` runs the chain's test-only ``epoch_dense_mechanism`` instead (its
divergences: no owner exemption / permit forcing / self-weight, every cell decays in the Yuma 3 EMA, and
a uid that neither had nor gets a permit keeps its stored bonds row).

Liquid-alpha consensus modes (subtensor PR #3070 "Liquid Alpha 2.1 Consensus Modes", merged 2026-08-11;
its code is not in the stored corpus, only its description and tests): ``current`` uses this epoch's
consensus; ``previous`` uses the stored ``Consensus`` (u16) of the last epoch converted with
``u16_proportion_to_fixed`` (``u16 / 65535`` as I32F32, truncated), falling back to the current
consensus when none is stored (``previous_consensus`` None or empty); ``auto`` is ``previous`` when
``bonds_penalty == 65535`` and ``current`` otherwise.  A stored vector of a different length is padded
with zeros / truncated to n (the PR says it "safely handles" such vectors; the exact rule is a guess).
The liquid-alpha on/off test "some C_j != 0" is applied to the chosen vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, getcontext

# --------------------------------------------------------------------------------------------------
# Fixed-point primitives (raw-bit Python ints)
# --------------------------------------------------------------------------------------------------

FRAC32 = 32
ONE32 = 1 << FRAC32
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
I128_MIN, I128_MAX = -(1 << 127), (1 << 127) - 1
U16_MAX = 65535
U64_MAX = (1 << 64) - 1


class FixedOverflow(ArithmeticError):
    """A ``checked_*`` operation overflowed (the chain gets ``None`` / ``Err``)."""


def tdiv(a: int, b: int) -> int:
    """Integer division truncating toward zero (Rust ``/`` on integers)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def clamp(x: int, lo: int, hi: int) -> int:
    return lo if x < lo else hi if x > hi else x


def from_int(x: int) -> int:
    """``I32F32::saturating_from_num(int)``: exact, saturating."""
    return clamp(x << FRAC32, I64_MIN, I64_MAX)


def in_i64(x: int) -> bool:
    return I64_MIN <= x <= I64_MAX


def mul(a: int, b: int) -> int:
    """I32F32 ``saturating_mul``: floor of the exact product, clamped."""
    return clamp((a * b) >> FRAC32, I64_MIN, I64_MAX)


def checked_mul(a: int, b: int) -> int:
    r = (a * b) >> FRAC32
    if not in_i64(r):
        raise FixedOverflow("I32F32 mul")
    return r


def checked_div(a: int, b: int) -> int:
    """I32F32 ``checked_div``: ``(a << 32) / b`` truncated; overflow or b == 0 raise."""
    if b == 0:
        raise FixedOverflow("I32F32 div by zero")
    r = tdiv(a << FRAC32, b)
    if not in_i64(r):
        raise FixedOverflow("I32F32 div")
    return r


def saturating_div(a: int, b: int) -> int:
    """I32F32 ``saturating_div`` (b != 0 in every use)."""
    return clamp(tdiv(a << FRAC32, b), I64_MIN, I64_MAX)


def safe_div(a: int, b: int) -> int:
    """subtensor ``safe_div`` on I32F32: ``checked_div(..).unwrap_or_default()``."""
    try:
        return checked_div(a, b)
    except FixedOverflow:
        return 0


def sat_add(a: int, b: int) -> int:
    return clamp(a + b, I64_MIN, I64_MAX)


def sat_sub(a: int, b: int) -> int:
    return clamp(a - b, I64_MIN, I64_MAX)


def checked_add(a: int, b: int) -> int:
    r = a + b
    if not in_i64(r):
        raise FixedOverflow("I32F32 add")
    return r


def to_u16_saturating(x: int) -> int:
    """``I32F32::saturating_to_num::<u16>()``: floor, clamped to [0, 65535]."""
    return clamp(x >> FRAC32, 0, U16_MAX)


def fixed_proportion_to_u16(x: int) -> int:
    """``fixed_proportion_to_u16``: ``floor(x * 65535)`` via an I32F32 saturating multiply."""
    return to_u16_saturating(mul(x, from_int(U16_MAX)))


def u16_proportion_to_fixed(x: int) -> int:
    """``u16_proportion_to_fixed`` / ``i32f32_as_u16_proportion``: ``x / 65535`` in I32F32."""
    return safe_div(from_int(x), from_int(U16_MAX))


def i64f64_safe_div(a: int, b: int) -> int:
    """I64F64 ``safe_div`` (i128 bits, 64 fraction bits)."""
    if b == 0:
        return 0
    r = tdiv(a << 64, b)
    return r if I128_MIN <= r <= I128_MAX else 0


def fixed64_to_fixed32(x: int) -> int:
    """``I32F32::saturating_from_num(I64F64)``: drop 32 fraction bits (floor), clamp."""
    return clamp(x >> 32, I64_MIN, I64_MAX)


# substrate_fixed::transcendental::E is I9F23 with bits ``consts::E.to_bits() >> 103`` where consts::E is
# U2F126; that is floor(e * 2**23) (e * 2**126 is far from an integer boundary at bit 103).
def _e_i9f23_bits() -> int:
    getcontext().prec = 60
    return int((Decimal(1).exp() * (1 << 23)).to_integral_value(rounding="ROUND_FLOOR"))


E_I9F23_BITS = _e_i9f23_bits()


def fixed_exp(x: int) -> int:
    """``substrate_fixed::transcendental::exp::<I32F32, I32F32>``; raises FixedOverflow on ``Err``.

    Taylor series ``1 + x + sum_{i=2}^{31} term_i`` with ``term_i = term_{i-1} * x / i`` (checked I32F32
    ops), on |x|; a negative input returns ``1 / result`` (checked, truncating).  x == 1 returns the
    I9F23 constant E widened to I32F32.
    """
    if x == 0:
        return ONE32
    if x == ONE32:
        return E_I9F23_BITS << (FRAC32 - 23)
    neg = x < 0
    if neg:
        x = -x
    result = x + ONE32
    term = x
    for i in range(2, FRAC32):  # 2..D::frac_nbits()
        term = checked_mul(term, x)
        term = checked_div(term, from_int(i))
        result = checked_add(result, term)
    if neg:
        result = checked_div(ONE32, result)
    return result


def exp_safe(x: int) -> int:
    """subtensor ``exp_safe``: clamp the input to [-20, 20]; on error 0 (input <= 0) or max."""
    lo, hi = from_int(-20), from_int(20)
    safe = lo if x < lo else hi if x > hi else x
    try:
        return fixed_exp(safe)
    except FixedOverflow:
        return 0 if safe <= 0 else I64_MAX


# --------------------------------------------------------------------------------------------------
# Vector / sparse-matrix helpers (math/*.rs)
# --------------------------------------------------------------------------------------------------

Sparse = list[list[tuple[int, int]]]


def inplace_normalize(x: list[int]) -> None:
    """``inplace_normalize``: divide by the sum unless it is 0 (plain sum, safe_div)."""
    total = sum(x)
    if total == 0:
        return
    for i, v in enumerate(x):
        x[i] = safe_div(v, total)


def is_topk_nonzero(vector: list[int], k: int) -> list[bool]:
    """``is_topk_nonzero_i32f32``: nonzero mask; if n >= k, a stable ascending sort drops the first n-k."""
    n = len(vector)
    result = [v != 0 for v in vector]
    if n < k:
        return result
    idxs = sorted(range(n), key=lambda i: vector[i])  # Python's sort is stable, like Rust's sort_by_key
    for idx in idxs[: max(n - k, 0)]:
        result[idx] = False
    return result


def weighted_median(stake: list[int], score: list[int], partition_idx: list[int], minority: int,
                    partition_lo: int, partition_hi: int) -> int:
    """``weighted_median``: the chain's iterative quickselect with a middle-index pivot."""
    if len(stake) != len(score):
        return 0
    current = list(partition_idx)
    iteration_limit = len(partition_idx)
    counter = 0
    while True:
        n = len(current)
        if n == 0:
            return 0
        if n == 1:
            return score[current[0]]
        pivot = score[current[n // 2]]
        lo_stake = hi_stake = 0
        lower: list[int] = []
        upper: list[int] = []
        for idx in current:
            if score[idx] == pivot:
                continue
            if score[idx] < pivot:
                lo_stake = sat_add(lo_stake, stake[idx])
                lower.append(idx)
            else:
                hi_stake = sat_add(hi_stake, stake[idx])
                upper.append(idx)
        if minority < sat_add(partition_lo, lo_stake) and lower:
            current = lower
            partition_hi = sat_add(partition_lo, lo_stake)
        elif sat_sub(partition_hi, hi_stake) <= minority and upper:
            current = upper
            partition_lo = sat_sub(partition_hi, hi_stake)
        else:
            return pivot
        counter += 1
        if counter > iteration_limit:
            return 0


def weighted_median_col_sparse(stake: list[int], score: Sparse, columns: int, majority: int) -> list[int]:
    """``weighted_median_col_sparse``: positive-stake rows only, renormalised; absent cells are 0."""
    use_stake = [s for s in stake if s > 0]
    inplace_normalize(use_stake)
    stake_sum = sum(use_stake)
    minority = sat_sub(stake_sum, majority)
    stake_idx = list(range(len(use_stake)))
    use_score = [[0] * len(use_stake) for _ in range(columns)]
    k = 0
    for s, row in zip(stake, score):
        if s > 0:
            for c, val in row:
                if c < columns:
                    use_score[c][k] = val
            k += 1
    return [weighted_median(use_stake, col, stake_idx, minority, 0, stake_sum) for col in use_score]


def mask_rows_sparse(mask: list[bool], m: Sparse) -> Sparse:
    return [[] if (mask[i] if i < len(mask) else True) else list(row) for i, row in enumerate(m)]


def mask_diag_sparse(m: Sparse, except_index: int | None) -> Sparse:
    """``mask_diag_sparse`` / ``mask_diag_sparse_except_index``."""
    return [[(j, v) for j, v in row if i != j or (except_index is not None and i == except_index)]
            for i, row in enumerate(m)]


def vec_mask_sparse_matrix(m: Sparse, first: list[int], second: list[int], mask_fn) -> Sparse:
    """Remove cell (i, j) where ``mask_fn(first[i], second[j])``."""
    return [[(j, v) for j, v in row if not mask_fn(first[i] if i < len(first) else 0,
                                                    second[j] if j < len(second) else 0)]
            for i, row in enumerate(m)]


def scalar_vec_mask_sparse_matrix(m: Sparse, scalar: int, vector: list[int], mask_fn) -> Sparse:
    return [[(j, v) for j, v in row if not mask_fn(scalar, vector[j] if j < len(vector) else 0)] for row in m]


def inplace_row_normalize_sparse(m: Sparse) -> None:
    for row in m:
        row_sum = sum(v for _, v in row)
        if row_sum > 0:
            row[:] = [(j, safe_div(v, row_sum)) for j, v in row]


def inplace_col_normalize_sparse(m: Sparse, columns: int) -> None:
    col_sum = [0] * columns
    for row in m:
        for j, v in row:
            if j < columns:
                col_sum[j] = sat_add(col_sum[j], v)
    for row in m:
        row[:] = [(j, safe_div(v, col_sum[j]) if j < columns and col_sum[j] != 0 else v) for j, v in row]


def inplace_col_max_upscale_sparse(m: Sparse, columns: int) -> None:
    col_max = [0] * columns
    for row in m:
        for j, v in row:
            if j < columns and col_max[j] < v:
                col_max[j] = v
    for row in m:
        row[:] = [(j, safe_div(v, col_max[j]) if j < columns and col_max[j] != 0 else v) for j, v in row]


def col_clip_sparse(m: Sparse, threshold: list[int]) -> Sparse:
    """``col_clip_sparse``: min(w, C_j); an entry with w > C_j and C_j <= 0 is removed."""
    out: Sparse = []
    for row in m:
        new_row = []
        for j, v in row:
            th = threshold[j] if j < len(threshold) else 0
            if th < v:
                if th > 0:
                    new_row.append((j, th))
            else:
                new_row.append((j, v))
        out.append(new_row)
    return out


def row_sum_sparse(m: Sparse) -> list[int]:
    return [sum(v for _, v in row) for row in m]


def matmul_sparse(m: Sparse, vector: list[int], columns: int) -> list[int]:
    """``result_j = sum_i vector_i * m_ij`` (saturating)."""
    result = [0] * columns
    for i, row in enumerate(m):
        scale = vector[i] if i < len(vector) else 0
        for j, v in row:
            if j < columns:
                result[j] = sat_add(result[j], mul(scale, v))
    return result


def matmul_transpose_sparse(m: Sparse, vector: list[int]) -> list[int]:
    """``result_i = sum_j vector_j * m_ij`` (saturating)."""
    out = []
    for row in m:
        acc = 0
        for j, v in row:
            acc = sat_add(acc, mul(vector[j] if j < len(vector) else 0, v))
        out.append(acc)
    return out


def row_hadamard_sparse(m: Sparse, vector: list[int]) -> Sparse:
    return [[(j, mul(v, scale)) for j, v in row] for row, scale in zip(m, vector)]


def interpolate_sparse(mat1: Sparse, mat2: Sparse, columns: int, ratio: int) -> Sparse:
    """``interpolate_sparse``: ``A + ratio*(B - A)``; ratio 0 / 1 return A / B unchanged (zeros kept),
    otherwise densified and only entries > 0 kept."""
    if ratio == 0:
        return [list(r) for r in mat1]
    if ratio == ONE32:
        return [list(r) for r in mat2]
    result: Sparse = []
    for row_a, row_b in zip(mat1, mat2):
        r1, r2 = [0] * columns, [0] * columns
        for j, v in row_a:
            if j < columns:
                r1[j] = v
        for j, v in row_b:
            if j < columns:
                r2[j] = v
        out = []
        for j in range(columns):
            val = sat_add(r1[j], mul(ratio, sat_sub(r2[j], r1[j])))
            if val > 0:
                out.append((j, val))
        result.append(out)
    return result


def mat_ema_sparse(new: Sparse, old: Sparse, alpha: int) -> Sparse:
    """``mat_ema_sparse``: ``alpha*new + (1-alpha)*old`` on the union of cells, keeping values > 0."""
    n = len(new)
    one_minus_alpha = sat_sub(ONE32, alpha)
    result: Sparse = []
    for i, new_row in enumerate(new):
        acc = [0] * n
        for j, v in new_row:
            if j < n:
                acc[j] = sat_add(acc[j], mul(alpha, v))
        if i < len(old):
            for j, v in old[i]:
                if j < n:
                    acc[j] = sat_add(acc[j], mul(one_minus_alpha, v))
        result.append([(j, v) for j, v in enumerate(acc) if v > 0])
    return result


def mat_ema_alpha_sparse(new: Sparse, old: Sparse, alpha: list[list[int]]) -> Sparse:
    """``mat_ema_alpha_sparse``: output only for cells present in ``new`` (``docs/design/yuma-epoch.md``, "Sparse and dense"):
    ``min(1, (1-a)*old + max(0, a*new))``, keeping values > 0."""
    result: Sparse = []
    for new_row, old_row, alpha_row in zip(new, old, alpha):
        decayed = [0] * len(alpha_row)
        for j, v in old_row:
            if j < len(alpha_row):
                decayed[j] = mul(sat_sub(ONE32, alpha_row[j]), v)
        out = []
        for j, v in new_row:
            if j < len(alpha_row):
                inc = max(mul(alpha_row[j], v), 0)
                val = min(sat_add(decayed[j], inc), ONE32)
                if val > 0:
                    out.append((j, val))
        result.append(out)
    return result


def mat_vec_mul_sparse(m: Sparse, vector: list[int]) -> Sparse:
    return [[(j, mul(v, vector[j])) for j, v in row if j < len(vector) and mul(v, vector[j]) != 0] for row in m]


def vec_mul_checked_or_zero(a: list[int], b: list[int]) -> list[int]:
    """``vec_mul``: ``checked_mul(..).unwrap_or_default()``."""
    out = []
    for x, y in zip(a, b):
        try:
            out.append(checked_mul(x, y))
        except FixedOverflow:
            out.append(0)
    return out


def clamp_fixed(value: int, low: int, high: int) -> int:
    """``clamp_i32f32``: ``value.min(high).max(low)``."""
    return max(min(value, high), low)


def liquid_alpha_sigmoid(consensus: int, weight: int, bond: int, alpha_low: int, alpha_high: int,
                         steepness: int) -> int:
    """``liquid_alpha_sigmoid`` for one (validator, miner) cell."""
    diff_buy = clamp_fixed(sat_sub(weight, consensus), 0, ONE32)
    diff_sell = clamp_fixed(sat_sub(bond, weight), 0, ONE32)
    combined = diff_buy if weight >= bond else diff_sell
    exponent = mul(saturating_div(steepness, from_int(-100)), sat_sub(combined, ONE32 >> 1))
    sigmoid = saturating_div(ONE32, sat_add(ONE32, exp_safe(exponent)))
    alpha = sat_add(alpha_low, mul(sigmoid, sat_sub(alpha_high, alpha_low)))
    return clamp_fixed(alpha, alpha_low, alpha_high)


def liquid_alpha_matrix_sparse(weights: Sparse, bonds: Sparse, consensus: list[int], alpha_low: int,
                               alpha_high: int, steepness: int) -> list[list[int]]:
    """``liquid_alpha_matrix_sparse``: a dense alpha per (i, j); absent weights / bonds read as 0."""
    alphas = []
    for w_row, b_row in zip(weights, bonds):
        w = dict(w_row)
        b = dict(b_row)
        alphas.append([liquid_alpha_sigmoid(c, w.get(j, 0), b.get(j, 0), alpha_low, alpha_high, steepness)
                       for j, c in enumerate(consensus)])
    return alphas


def bonds_moving_average_alpha(bonds_moving_average: int) -> int:
    """``1 - bma/1e6``: the ratio in I64F64 (truncating), narrowed to I32F32 (floor), then 1 - it."""
    ratio64 = i64f64_safe_div(bonds_moving_average << 64, 1_000_000 << 64)
    return sat_sub(ONE32, fixed64_to_fixed32(ratio64))


# --------------------------------------------------------------------------------------------------
# The epoch
# --------------------------------------------------------------------------------------------------


@dataclass
class RefParams:
    """Hyperparameters in the chain's storage units, runtime defaults."""

    kappa: int = 32767
    bonds_penalty: int = 65535
    bonds_moving_average: int = 900_000
    yuma3: bool = False
    liquid_alpha: bool = False
    alpha_low: int = 45875
    alpha_high: int = 58982
    alpha_sigmoid_steepness: int = 1000
    liquid_alpha_consensus_mode: str = "current"  # current | previous | auto
    activity_cutoff: int = 5000
    max_allowed_validators: int = 128
    stake_threshold: int = 0
    tempo: int = 360
    path: str = "sparse"  # "sparse": epoch_mechanism (production); "dense": epoch_dense_mechanism (tests)
    bonds_reset_enabled: bool = False  # BondsResetOn
    commit_reveal_weights_enabled: bool = False  # CommitRevealWeightsEnabled


def do_reset_bonds(bonds: list[list[int]], uid: int, bonds_reset_enabled: bool) -> list[list[int]]:
    """``do_reset_bonds``: when ``BondsResetOn``, every stored row loses its ``(uid, _)`` entry.

    The stored grid is dense here, so a removed entry becomes 0 (an absent bond reads as 0)."""
    if not bonds_reset_enabled:
        return bonds
    return [[0 if j == uid else v for j, v in enumerate(row)] for row in bonds]


def _sparse_from_dense(grid: list[list[int]], present: list[list[bool]] | None, n: int,
                       keep_zero: bool) -> Sparse:
    rows: Sparse = []
    for i in range(n):
        row = []
        for j in range(n):
            v = int(grid[i][j])
            if present is not None and not present[i][j]:
                continue
            if v == 0 and not keep_zero:
                continue
            row.append((j, from_int(v)))
        rows.append(row)
    return rows


def _consensus_for_liquid_alpha(params: RefParams, consensus: list[int],
                                previous_consensus: list[int] | None) -> list[int]:
    mode = params.liquid_alpha_consensus_mode
    if mode not in ("current", "previous", "auto"):
        raise ValueError(f"liquid_alpha_consensus_mode must be current|previous|auto, got {mode!r}")
    use_previous = mode == "previous" or (mode == "auto" and params.bonds_penalty == U16_MAX)
    if not use_previous or not previous_consensus:
        return consensus
    n = len(consensus)
    prev = [u16_proportion_to_fixed(int(c)) for c in previous_consensus[:n]]
    return prev + [0] * (n - len(prev))


def _emission_floor(x: int, emission: int) -> int:
    """``I96F32::saturating_from_num(x).saturating_mul(E).saturating_to_num::<u64>()``."""
    return clamp((x * emission) >> FRAC32, 0, U64_MAX)


def reference_epoch(weights: list[list[int]], stake: list[int], last_update: list[int],
                    block_at_registration: list[int], validator_permit: list[bool], bonds: list[list[int]],
                    block: int, owner_uid: int = -1, params: RefParams = RefParams(),
                    emission: int = 10**9, previous_consensus: list[int] | None = None,
                    weights_present: list[list[bool]] | None = None,
                    commit_blocks: list[int | None] | None = None) -> dict:
    """Run one sparse epoch exactly as ``epoch_mechanism`` does.  See the module docstring.

    Returns a dict of Python ints / lists: u16 outputs ``consensus``, ``incentive``, ``dividends``,
    ``validator_trust``, ``stake_weight``; their raw I32F32 bits under ``<name>_bits``; wei outputs
    ``server_emission``, ``validator_emission`` (what is paid) and ``emission`` (the chain's stored
    combined ``floor(normalize(I+D)*E)``); ``bonds`` (new stored u16, n x n, empty rows as zeros);
    ``validator_permit`` (new permits); ``active_stake_bits``, ``stake_bits``; ``dust`` =
    ``E - sum(emission)`` and ``payout_dust`` = ``E - sum(server + validator)``; ``inactive``.
    """
    n = len(stake)
    p = params
    if owner_uid < -1 or owner_uid >= max(n, 1):
        raise ValueError(f"owner_uid must be -1 or in [0, {n}), got {owner_uid}")
    if p.path == "dense":
        return _reference_epoch_dense(weights, stake, last_update, block_at_registration, validator_permit, bonds,
                                      block, owner_uid, p, emission, previous_consensus, weights_present)
    if p.path != "sparse":
        raise ValueError(f"path must be 'sparse' or 'dense', got {p.path!r}")
    owner = owner_uid if owner_uid >= 0 and n > 0 else None

    # 1. Activity.
    inactive = [last_update[i] + p.activity_cutoff < block for i in range(n)]

    # 3-4. Stake: threshold filter (owner exempt), I64F64 normalise, narrow to I32F32.
    filtered = [(int(s) << 64) if (i == owner or int(s) >= p.stake_threshold) else 0
                for i, s in enumerate(stake)]
    total64 = sum(filtered)
    if total64 != 0:
        filtered = [i64f64_safe_div(s, total64) for s in filtered]
    stake_fixed = [fixed64_to_fixed32(s) for s in filtered]

    # 5. Permits: stored (owner forced) for this epoch, top-k nonzero (owner forced) for the next.
    permits = [bool(v) for v in validator_permit]
    if owner is not None:
        permits[owner] = True
    new_permits = is_topk_nonzero(stake_fixed, p.max_allowed_validators)
    if owner is not None:
        new_permits[owner] = True

    # 6. Active stake.
    active_stake = [0 if (inactive[i] or not permits[i]) else stake_fixed[i] for i in range(n)]
    inplace_normalize(active_stake)

    # 7. Weights.
    w = _sparse_from_dense(weights, weights_present, n, keep_zero=True)
    w = mask_rows_sparse([not b for b in permits], w)
    w = mask_diag_sparse(w, owner)
    w = vec_mask_sparse_matrix(w, last_update, block_at_registration, lambda upd, reg: upd <= reg)
    if p.commit_reveal_weights_enabled:
        commits = [U64_MAX] * n  # MAX: no active commit
        for i, cb in enumerate(commit_blocks or []):
            if cb is not None and i < n:
                commits[i] = min(commits[i], cb)
        w = vec_mask_sparse_matrix(w, commits, block_at_registration, lambda cb, reg: cb < reg)
    inplace_row_normalize_sparse(w)

    # 8-11. Consensus, clip, validator trust, ranks / incentive.
    kappa = safe_div(from_int(p.kappa), from_int(U16_MAX))
    consensus = weighted_median_col_sparse(active_stake, w, n, kappa)
    clipped = col_clip_sparse(w, consensus)
    validator_trust = row_sum_sparse(clipped)
    ranks = matmul_sparse(clipped, active_stake, n)
    inplace_normalize(ranks)
    incentive = ranks

    # 12. Weights for bonds.
    bonds_penalty = safe_div(from_int(p.bonds_penalty), from_int(U16_MAX))
    weights_for_bonds = interpolate_sparse(w, clipped, n, bonds_penalty)

    # 13. Bonds and dividends.
    last_tempo = max(block - p.tempo, 0)
    recently = lambda lt, reg: lt <= reg  # noqa: E731  (the chain's closure)
    stored = _sparse_from_dense(bonds, None, n, keep_zero=False)
    if p.yuma3:
        b = [[(j, u16_proportion_to_fixed(v >> FRAC32)) for j, v in row] for row in stored]
        b = scalar_vec_mask_sparse_matrix(b, last_tempo, block_at_registration, recently)
        consensus_la = _consensus_for_liquid_alpha(p, consensus, previous_consensus)
        if p.liquid_alpha and consensus_la and any(c != 0 for c in consensus_la):
            alpha_low = u16_proportion_to_fixed(p.alpha_low)
            alpha_high = u16_proportion_to_fixed(p.alpha_high)
            alphas = liquid_alpha_matrix_sparse(weights_for_bonds, b, consensus_la, alpha_low, alpha_high,
                                                from_int(p.alpha_sigmoid_steepness))
            ema_bonds = mat_ema_alpha_sparse(weights_for_bonds, b, alphas)
        else:
            ema_bonds = mat_ema_sparse(weights_for_bonds, b, bonds_moving_average_alpha(p.bonds_moving_average))
        ema_norm = [list(r) for r in ema_bonds]
        inplace_col_normalize_sparse(ema_norm, n)
        total_bonds_per_validator = row_sum_sparse(mat_vec_mul_sparse(ema_norm, incentive))
        dividends = vec_mul_checked_or_zero(total_bonds_per_validator, active_stake)
        inplace_normalize(dividends)
    else:
        b = scalar_vec_mask_sparse_matrix(stored, last_tempo, block_at_registration, recently)
        inplace_col_normalize_sparse(b, n)
        delta = row_hadamard_sparse(weights_for_bonds, active_stake)
        inplace_col_normalize_sparse(delta, n)
        ema_bonds = mat_ema_sparse(delta, b, bonds_moving_average_alpha(p.bonds_moving_average))
        inplace_col_normalize_sparse(ema_bonds, n)
        dividends = matmul_transpose_sparse(ema_bonds, incentive)
        inplace_normalize(dividends)
        inplace_col_max_upscale_sparse(ema_bonds, n)

    # 16. Bonds rows: kept for new permits, empty (zeros) otherwise.
    new_bonds = [[0] * n for _ in range(n)]
    for i in range(n):
        if new_permits[i]:
            for j, v in ema_bonds[i]:
                new_bonds[i][j] = fixed_proportion_to_u16(v)
    return _emission_and_outputs(incentive, dividends, consensus, validator_trust, stake_fixed, active_stake,
                                 emission, new_bonds, new_permits, inactive)


def _emission_and_outputs(incentive: list[int], dividends: list[int], consensus: list[int],
                          validator_trust: list[int], stake_fixed: list[int], active_stake: list[int],
                          emission: int, new_bonds: list[list[int]], new_permits: list[bool],
                          inactive: list[bool]) -> dict:
    """Steps 14-15, identical in both chain paths: the emission with its floors, the stored u16 vectors."""
    # 14. Emission.
    combined = [sat_add(i_, d_) for i_, d_ in zip(incentive, dividends)]
    emission_sum = sum(combined)
    norm_server = list(incentive)
    norm_validator = list(dividends)
    norm_combined = list(combined)
    if emission_sum != 0:
        norm_server = [safe_div(v, emission_sum) for v in norm_server]
        norm_validator = [safe_div(v, emission_sum) for v in norm_validator]
    inplace_normalize(norm_combined)
    if emission_sum == 0:
        fallback = stake_fixed if sum(active_stake) == 0 else active_stake
        norm_validator = list(fallback)
        norm_combined = list(fallback)
    server_emission = [_emission_floor(v, emission) for v in norm_server]
    validator_emission = [_emission_floor(v, emission) for v in norm_validator]
    combined_emission = [_emission_floor(v, emission) for v in norm_combined]

    to_u16 = lambda xs: [fixed_proportion_to_u16(x) for x in xs]  # noqa: E731
    return {
        "server_emission": server_emission,
        "validator_emission": validator_emission,
        "emission": combined_emission,
        "consensus": to_u16(consensus),
        "incentive": to_u16(incentive),
        "dividends": to_u16(dividends),
        "validator_trust": to_u16(validator_trust),
        "stake_weight": to_u16(stake_fixed),
        "consensus_bits": consensus,
        "incentive_bits": incentive,
        "dividends_bits": dividends,
        "validator_trust_bits": validator_trust,
        "stake_bits": stake_fixed,
        "active_stake_bits": active_stake,
        "bonds": new_bonds,
        "validator_permit": new_permits,
        "inactive": inactive,
        "dust": emission - sum(combined_emission),
        "payout_dust": emission - sum(server_emission) - sum(validator_emission),
    }


# --------------------------------------------------------------------------------------------------
# The dense path (epoch_dense_mechanism, run_epoch/epoch_dense.rs: the chain's test-only epoch)
# --------------------------------------------------------------------------------------------------

Dense = list[list[int]]


def _dense_row_normalize(m: Dense) -> None:
    for row in m:
        row_sum = sum(row)
        if row_sum > 0:
            row[:] = [safe_div(v, row_sum) for v in row]


def _dense_col_normalize(m: Dense) -> None:
    n_cols = len(m[0]) if m else 0
    sums = [sum(row[j] for row in m) for j in range(n_cols)]
    for row in m:
        row[:] = [safe_div(v, sums[j]) if sums[j] != 0 else v for j, v in enumerate(row)]


def _dense_col_max_upscale(m: Dense) -> None:
    n_cols = len(m[0]) if m else 0
    maxes = [max([0] + [row[j] for row in m]) for j in range(n_cols)]
    for row in m:
        row[:] = [safe_div(v, maxes[j]) if maxes[j] != 0 else v for j, v in enumerate(row)]


def _dense_weighted_median_col(stake: list[int], score: Dense, majority: int) -> list[int]:
    """``weighted_median_col``: per column, the positive-stake rows, renormalised."""
    columns = len(score[0]) if score else 0
    median = [0] * columns
    for c in range(columns):
        use_stake = [s for s in stake if s > 0]
        use_score = [score[r][c] for r, s in enumerate(stake) if s > 0]
        if use_stake:
            inplace_normalize(use_stake)
            stake_sum = sum(use_stake)
            median[c] = weighted_median(use_stake, use_score, list(range(len(use_stake))),
                                        sat_sub(stake_sum, majority), 0, stake_sum)
    return median


def _dense_mat_ema(new: Dense, old: Dense, alpha: int) -> Dense:
    one_minus_alpha = sat_sub(ONE32, alpha)
    return [[sat_add(mul(alpha, a), mul(one_minus_alpha, b)) for a, b in zip(rn, ro)] for rn, ro in zip(new, old)]


def _dense_mat_ema_alpha(new: Dense, old: Dense, alpha: Dense) -> Dense:
    return [[min(sat_add(mul(sat_sub(ONE32, a), o), max(mul(a, w), 0)), ONE32) for w, o, a in zip(rn, ro, ra)]
            for rn, ro, ra in zip(new, old, alpha)]


def _reference_epoch_dense(weights: list[list[int]], stake: list[int], last_update: list[int],
                           block_at_registration: list[int], validator_permit: list[bool], bonds: list[list[int]],
                           block: int, owner_uid: int, p: RefParams, emission: int,
                           previous_consensus: list[int] | None, weights_present: list[list[bool]] | None) -> dict:
    """``epoch_dense_mechanism``.  Differences from the sparse path (``docs/design/yuma-epoch.md``, "Sparse and dense"): no owner exemption from the
    stake threshold, no owner permit forcing, the whole diagonal masked (the owner's self-weight too), every
    cell present (a dense matrix cannot tell absent from zero, so the Yuma 3 EMA decays every cell), and a uid
    that neither had nor gets a permit keeps its stored bonds row unchanged."""
    n = len(stake)
    inactive = [last_update[i] + p.activity_cutoff < block for i in range(n)]
    last_tempo = max(block - p.tempo, 0)
    recently_registered = [last_tempo <= reg for reg in block_at_registration]

    filtered = [(int(s) << 64) if int(s) >= p.stake_threshold else 0 for s in stake]
    total64 = sum(filtered)
    if total64 != 0:
        filtered = [i64f64_safe_div(s, total64) for s in filtered]
    stake_fixed = [fixed64_to_fixed32(s) for s in filtered]

    permits = [bool(v) for v in validator_permit]
    new_permits = is_topk_nonzero(stake_fixed, p.max_allowed_validators)
    active_stake = [0 if (inactive[i] or not permits[i]) else stake_fixed[i] for i in range(n)]
    inplace_normalize(active_stake)

    w = [[from_int(int(v)) for v in row] for row in weights]
    for i in range(n):
        for j in range(n):
            absent = weights_present is not None and not weights_present[i][j]  # get_weights: absent reads 0
            if absent or not permits[i] or i == j or last_update[i] <= block_at_registration[j]:
                w[i][j] = 0
    _dense_row_normalize(w)

    kappa = safe_div(from_int(p.kappa), from_int(U16_MAX))
    consensus = _dense_weighted_median_col(active_stake, w, kappa)
    clipped = [[min(c, v) for v, c in zip(row, consensus)] for row in w]
    validator_trust = [sum(row) for row in clipped]
    ranks = [0] * n
    for i in range(n):
        for j in range(n):
            ranks[j] = sat_add(ranks[j], mul(active_stake[i], clipped[i][j]))
    inplace_normalize(ranks)
    incentive = ranks

    ratio = safe_div(from_int(p.bonds_penalty), from_int(U16_MAX))
    if ratio == 0:
        wfb = [list(r) for r in w]
    elif ratio == ONE32:
        wfb = [list(r) for r in clipped]
    else:
        wfb = [[sat_add(a, mul(ratio, sat_sub(b, a))) for a, b in zip(ra, rb)] for ra, rb in zip(w, clipped)]

    if p.yuma3:
        b = [[0 if recently_registered[j] else u16_proportion_to_fixed(int(v)) for j, v in enumerate(row)]
             for row in bonds]
        consensus_la = _consensus_for_liquid_alpha(p, consensus, previous_consensus)
        if p.liquid_alpha and consensus_la and any(c != 0 for c in consensus_la):
            lo, hi = u16_proportion_to_fixed(p.alpha_low), u16_proportion_to_fixed(p.alpha_high)
            steep = from_int(p.alpha_sigmoid_steepness)
            alphas = [[liquid_alpha_sigmoid(c, wv, bv, lo, hi, steep) for wv, bv, c in zip(rw, rb, consensus_la)]
                      for rw, rb in zip(wfb, b)]
            ema = _dense_mat_ema_alpha(wfb, b, alphas)
        else:
            ema = _dense_mat_ema(wfb, b, bonds_moving_average_alpha(p.bonds_moving_average))
        ema_norm = [list(r) for r in ema]
        _dense_col_normalize(ema_norm)
        total_bonds_per_validator = [sum(vec_mul_checked_or_zero(row, incentive)) for row in ema_norm]
        dividends = vec_mul_checked_or_zero(total_bonds_per_validator, active_stake)
        inplace_normalize(dividends)
    else:
        b = [[0 if recently_registered[j] else from_int(int(v)) for j, v in enumerate(row)] for row in bonds]
        _dense_col_normalize(b)
        delta = [[mul(s, v) for v in row] for row, s in zip(wfb, active_stake)]
        _dense_col_normalize(delta)
        ema = _dense_mat_ema(delta, b, bonds_moving_average_alpha(p.bonds_moving_average))
        _dense_col_normalize(ema)
        dividends = [0] * n
        for i in range(n):
            for j in range(n):
                dividends[i] = sat_add(dividends[i], mul(ema[i][j], incentive[j]))
        inplace_normalize(dividends)
        _dense_col_max_upscale(ema)

    new_bonds = []
    for i in range(n):
        if new_permits[i]:
            new_bonds.append([fixed_proportion_to_u16(v) for v in ema[i]])
        elif permits[i]:
            new_bonds.append([0] * n)
        else:
            new_bonds.append([int(v) for v in bonds[i]])  # the chain writes nothing: the old row stays
    return _emission_and_outputs(incentive, dividends, consensus, validator_trust, stake_fixed, active_stake,
                                 emission, new_bonds, new_permits, inactive)


# --------------------------------------------------------------------------------------------------
# Storage stand-in for replaying the chain's multi-epoch tests
# --------------------------------------------------------------------------------------------------


def max_upscale_u16(values: list[int]) -> list[int]:
    """``vec_u16_max_upscale_to_u16``, what ``set_weights`` stores: ``round(v * 65535 / max)`` in I32F32
    (``round`` ties away from zero); ``v * (65535 / max)`` when ``max > 32768``."""
    u16_max = from_int(U16_MAX)
    vec = [from_int(v) for v in values]
    top = max(vec, default=0)

    def rounded(x: int) -> int:
        return clamp((x + (ONE32 >> 1)) >> FRAC32, 0, U16_MAX)

    if top == 0:
        return [to_u16_saturating(mul(e, u16_max)) for e in vec]
    if top > from_int(32768):
        return [rounded(mul(e, safe_div(u16_max, top))) for e in vec]
    return [rounded(safe_div(mul(e, u16_max), top)) for e in vec]


class ChainSim:
    """The storage a chain epoch test mutates between epochs (weights, last update, permits, bonds).

    ``epoch_fn`` has ``reference_epoch``'s signature; tests of other implementations pass their own.
    """

    def __init__(self, n: int, stake: list[int], registered_at: int, params: RefParams, owner_uid: int = -1,
                 epoch_fn=None):
        self.n = n
        self.stake = list(stake)
        self.params = params
        self.owner_uid = owner_uid
        self.weights = [[0] * n for _ in range(n)]
        self.present = [[False] * n for _ in range(n)]
        self.last_update = [0] * n
        self.registered = [registered_at] * n
        self.permits = [False] * n
        self.bonds = [[0] * n for _ in range(n)]
        self.previous_consensus: list[int] | None = None
        self.block = registered_at
        self.epoch_fn = epoch_fn or reference_epoch

    def set_weights(self, uid: int, dests: list[int], values: list[int]) -> None:
        """``set_weights`` (no checks): the row is replaced by the max-upscaled values, zeros stored."""
        self.weights[uid] = [0] * self.n
        self.present[uid] = [False] * self.n
        for j, v in zip(dests, max_upscale_u16(values)):
            self.weights[uid][j] = v
            self.present[uid][j] = True
        self.last_update[uid] = self.block

    def reset_bonds(self, uid: int) -> None:
        """A metadata commitment by ``uid``'s hotkey (``on_metadata_commitment`` -> ``do_reset_bonds``)."""
        self.bonds = do_reset_bonds(self.bonds, uid, self.params.bonds_reset_enabled)

    def epoch(self, emission: int = 10**9) -> dict:
        out = self.epoch_fn(self.weights, self.stake, self.last_update, self.registered, self.permits, self.bonds,
                            self.block, self.owner_uid, self.params, emission, self.previous_consensus,
                            self.present)
        self.permits = out["validator_permit"]
        self.bonds = out["bonds"]
        self.previous_consensus = out["consensus"]
        return out


__all__ = ["RefParams", "reference_epoch", "do_reset_bonds", "ChainSim", "max_upscale_u16", "weighted_median", "weighted_median_col_sparse", "fixed_exp",
           "exp_safe", "liquid_alpha_sigmoid", "fixed_proportion_to_u16", "u16_proportion_to_fixed"]
