"""Direct summation of the nonlocal attention term (Numba): the O(M N) reference.

The public entry is :func:`continuum.kernels.attention_field`, which checks its input and
picks this path or a fast expansion; this module evaluates, at target points x_i, the field of
a weighted source cloud (points y_j, weights w_j >= 0):

.. math::

    X(x_i) = P_{x_i}^\\perp V \\frac{\\sum_j w_j e^{\\beta\\langle x_i, A y_j\\rangle} y_j}{Z_i},
    \\qquad A = Q^T K,\\quad Z_i = \\sum_j w_j e^{\\beta\\langle x_i, A y_j\\rangle}\\ (SA)
    \\ \\text{or}\\ 1\\ (USA).

Since V is linear it is applied once per target, after the sum. P_x^perp y = y - <x, y> x is
applied as written, also for x slightly off the sphere (Runge-Kutta stages), so that the ambient
ODE x' = X(x) keeps |x| = 1 invariant.

Implementation (why it is fast and safe):

* no M x N temporary: sources are visited in blocks of ``_BLOCK`` columns of the transposed
  source array (d, N), so the score loop, the exponential and the accumulation vectorise
  (SIMD) over sources; targets are taken in tiles of ``_TILE`` that reuse each source block
  while it is in cache; from d = ``GEMM_MIN_D`` on, scores and sums of a tile are BLAS
  matrix products (``_field_kernel_gemm``), which wins by 2-4x at d = 64;
* overflow-free softmax: scores are shifted by an upper bound of the maximum,
  ``m_i = beta |A^T x_i| max_j |y_j| >= s_ij``, so every exponent is <= 0. If the shifted sum
  is so small that it may have underflowed (< ``_TINY``), the target is recomputed with the
  exact maximum (two passes). For USA the result is ``e^{m_i}`` times the shifted sum; a
  genuinely overflowing result raises ``FloatingPointError``;
* the exponential is a vectorisable exp (``_weighted_exp``: Cody-Waite range reduction,
  degree-13 Taylor polynomial on |r| <= ln2/2, exponent bits set directly): relative error
  below 1e-15,
  exponents below -700 are clamped there (their contribution is < 1e-304 of a sum >= 1e-200);
* ``parallel=True`` over target tiles, ``cache=True`` (compiled once per machine).

The checks every field path shares live here, at the bottom of the field's imports:
:func:`check_model`, :func:`check_weights`, :func:`check_cloud_shapes` and
:func:`check_finite` (the kernels, the harmonic expansion and the measure-level modules use
them; ``attention_field(check=False)`` keeps the last two, O((M + N) d)).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numba as nb
import numpy as np
from numba import prange

from .checks import as_real_array
from .geometry import check_points
from .model import Attention

__all__ = ["direct_field", "interaction_energy", "log_kernel_mean", "check_finite",
           "check_cloud_shapes", "check_model", "check_weights", "GEMM_MIN_D", "LOG_MAX"]

_BLOCK = 256
_TILE = 32
_GEMM_TILE = 32
#: from this dimension on, the scores and sums are BLAS products (measured crossover)
GEMM_MIN_D = 12
_TINY = 1e-200
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


@nb.njit(inline="always", fastmath=True)
def _exp_taylor(r):
    """e^r for |r| <= ln2/2 by Horner on the degree-13 Taylor polynomial (error < 4e-18)."""
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    return p * r + 1.0


@nb.njit(inline="always", fastmath=True)
def _weighted_exp(scores, shift, w, nb_, bits):
    """scores[j] <- w_j e^{scores[j] - shift} for j < nb_ (in place); returns their sum.

    Vectorisable exp: x = max(s - shift, -700) <= 0, k = round(x / ln2), r = x - k ln2
    (Cody-Waite, |r| <= ln2/2), e^x = 2^k e^r with 2^k built from its exponent bits.
    """
    scale = bits.view(np.float64)
    for j in range(nb_):
        x = max(scores[j] - shift, -700.0)
        k = np.int64(x * _LOG2E - 0.5)  # round(x / ln2), x <= 0
        kf = np.float64(k)
        r = (x - kf * _LN2_HI) - kf * _LN2_LO
        bits[j] = (k + 1023) << 52  # bits of the double 2^k
        scores[j] = _exp_taylor(r) * w[j]
    total = 0.0
    for j in range(nb_):
        scores[j] *= scale[j]
        total += scores[j]
    return total


@nb.njit(fastmath=True, cache=True)
def _accumulate_block(q, shift, sources_t, weights, j0, nb_, s_buf, bits, acc):
    """acc += sum_{j in block} w_j e^{q.y_j - shift} y_j; returns the block's sum of weights
    w_j e^{q.y_j - shift}. Requires q.y_j <= shift + O(eps) (every exponent <= 0)."""
    d = sources_t.shape[0]
    row = sources_t[0, j0:j0 + nb_]
    qa = q[0]
    for j in range(nb_):
        s_buf[j] = qa * row[j]
    for a in range(1, d):
        qa = q[a]
        row = sources_t[a, j0:j0 + nb_]
        for j in range(nb_):
            s_buf[j] += qa * row[j]
    den = _weighted_exp(s_buf, shift, weights[j0:j0 + nb_], nb_, bits)
    for a in range(d):
        row = sources_t[a, j0:j0 + nb_]
        t = 0.0
        for j in range(nb_):
            t += s_buf[j] * row[j]
        acc[a] += t
    return den


@nb.njit(fastmath=True, cache=True)
def _max_score(q, sources_t):
    d, n = sources_t.shape
    best = -1e308
    for j in range(n):
        s = 0.0
        for a in range(d):
            s += q[a] * sources_t[a, j]
        if s > best:
            best = s
    return best


@nb.njit(fastmath=True, cache=True)
def _finish_target(x, q, shift, den, acc, sources_t, weights, V, normalized, project, out):
    """out = P_x^perp V acc / den (SA) or P_x^perp V acc e^shift (USA), after recomputing acc
    and den with the exact maximum as shift if the bound-shifted sum may have underflowed
    (without P_x^perp when ``project`` is False)."""
    d, n = sources_t.shape
    if den < _TINY:
        shift = _max_score(q, sources_t)
        s_buf = np.empty(_BLOCK)
        bits = np.empty(_BLOCK, dtype=np.int64)
        acc[:] = 0.0
        den = 0.0
        for j0 in range(0, n, _BLOCK):
            den += _accumulate_block(q, shift, sources_t, weights, j0, min(_BLOCK, n - j0),
                                     s_buf, bits, acc)
    factor = 1.0 / den if normalized else math.exp(shift)
    xv = 0.0
    for a in range(d):
        t = 0.0
        for b in range(d):
            t += V[a, b] * acc[b]
        out[a] = factor * t
        xv += x[a] * out[a]
    if project:
        for a in range(d):
            out[a] -= xv * x[a]


@nb.njit(inline="always")
def _tile_order(k, n_tiles, causal):
    """Tile visited k-th: in order, or for a causal mask (tile t costs ~ t) interleaved
    first, last, second, ... so that the parallel loop's contiguous chunks balance."""
    k = np.int64(k)  # prange's index may be unsigned: keep the arithmetic in int64
    if not causal:
        return k
    return k // 2 if k % 2 == 0 else np.int64(n_tiles) - 1 - k // 2


@nb.njit(parallel=True, fastmath=True, cache=True)
def _field_kernel(targets, sources_t, weights, AT, V, beta, normalized, source_radius, causal,
                  project, out):
    """Fill out[i] with the attention field at targets[i]; see the module docstring.

    Targets are processed in tiles of ``_TILE`` (in parallel); for each source block the tile's
    targets reuse the block while it sits in cache. ``causal``: target i sums over the
    sources j <= i only (targets are the sources, M = N).
    """
    m, d = targets.shape
    n = sources_t.shape[1]
    n_tiles = (m + _TILE - 1) // _TILE
    for k in prange(n_tiles):
        tile = _tile_order(k, n_tiles, causal)
        i0 = tile * _TILE
        tm = min(_TILE, m - i0)
        q = np.empty((tm, d))  # q_i = beta A^T x_i, so that s_ij = <q_i, y_j>
        shift = np.empty(tm)
        acc = np.zeros((tm, d))
        den = np.zeros(tm)
        s_buf = np.empty(_BLOCK)
        bits = np.empty(_BLOCK, dtype=np.int64)
        for i in range(tm):
            qnorm2 = 0.0
            for a in range(d):
                t = 0.0
                for b in range(d):
                    t += AT[a, b] * targets[i0 + i, b]
                q[i, a] = beta * t
                qnorm2 += q[i, a] * q[i, a]
            shift[i] = math.sqrt(qnorm2) * source_radius
        n_src = min(n, i0 + tm) if causal else n
        for j0 in range(0, n_src, _BLOCK):
            nb_ = min(_BLOCK, n_src - j0)
            for i in range(tm):
                nb_i = min(nb_, i0 + i + 1 - j0) if causal else nb_
                if nb_i > 0:
                    den[i] += _accumulate_block(q[i], shift[i], sources_t, weights, j0, nb_i,
                                                s_buf, bits, acc[i])
        for i in range(tm):
            top = i0 + i + 1 if causal else n
            _finish_target(targets[i0 + i], q[i], shift[i], den[i], acc[i], sources_t[:, :top],
                           weights[:top], V, normalized, project, out[i0 + i])


@nb.njit(parallel=True, fastmath=True, cache=True)
def _field_kernel_gemm(targets, sources, sources_t, weights, A, V, beta, normalized,
                       source_radius, block, causal, project, out):
    """Same field as ``_field_kernel``, for large d: per tile of ``_GEMM_TILE`` targets and
    block of sources, the scores S = Q_tile Y_block^T and the sums E Y_block are BLAS
    matrix products (dgemm), the exponential is the vectorised one above.

    ``block`` is chosen so that tile * block * d <= 262144: OpenBLAS runs such products on one
    thread, so the parallel loop over tiles does not oversubscribe the cores.
    """
    m, d = targets.shape
    n = sources.shape[0]
    n_tiles = (m + _GEMM_TILE - 1) // _GEMM_TILE
    for k in prange(n_tiles):
        tile = _tile_order(k, n_tiles, causal)
        i0 = tile * _GEMM_TILE
        tm = min(_GEMM_TILE, m - i0)
        q = beta * np.dot(targets[i0:i0 + tm], A)  # rows q_i = beta A^T x_i
        shift = np.empty(tm)
        for i in range(tm):
            qnorm2 = 0.0
            for a in range(d):
                qnorm2 += q[i, a] * q[i, a]
            shift[i] = math.sqrt(qnorm2) * source_radius
        acc = np.zeros((tm, d))
        den = np.zeros(tm)
        bits = np.empty(block, dtype=np.int64)
        n_src = min(n, i0 + tm) if causal else n
        for j0 in range(0, n_src, block):
            nb_ = min(block, n_src - j0)
            E = np.dot(q, sources[j0:j0 + nb_].T)  # scores (tm, nb_)
            w = weights[j0:j0 + nb_]
            for i in range(tm):
                nb_i = min(nb_, i0 + i + 1 - j0) if causal else nb_
                if nb_i > 0:
                    den[i] += _weighted_exp(E[i], shift[i], w, nb_i, bits)
                for j in range(max(nb_i, 0), nb_):  # masked out (j > i): no contribution
                    E[i, j] = 0.0
            acc += np.dot(E, sources[j0:j0 + nb_])
        for i in range(tm):
            top = i0 + i + 1 if causal else n
            _finish_target(targets[i0 + i], q[i].copy(), shift[i], den[i], acc[i],
                           sources_t[:, :top], weights[:top], V, normalized, project,
                           out[i0 + i])


#: below this many multiply-adds (M N d) the kernels run on one thread: waking Numba's thread
#: pool costs milliseconds on a busy machine, against microseconds of work (each tile does the
#: same arithmetic on any thread, so the result is bitwise the same)
SERIAL_MAX_WORK = 1 << 18


@contextmanager
def _threads_for(work: int):
    previous = nb.get_num_threads()
    if work < SERIAL_MAX_WORK and previous > 1:
        nb.set_num_threads(1)
    try:
        yield
    finally:
        nb.set_num_threads(previous)


def check_finite(values: np.ndarray, name: str, context: str = "") -> None:
    """ValueError naming ``name`` if the array holds a NaN or an inf (min and max propagate
    both: two vectorised passes, no temporary; O(size), negligible next to any field)."""
    if values.size and not (np.isfinite(values.min()) and np.isfinite(values.max())):
        raise ValueError(f"{name} has non-finite entries (NaN or inf){context}")


def check_model(model, name: str = "model", d: int | None = None) -> Attention:
    """``model`` if it is an :class:`~continuum.model.Attention` (of dimension ``d`` when
    given), else TypeError (ValueError for the wrong d) naming ``name``."""
    if not isinstance(model, Attention):
        raise TypeError(f"{name} must be an Attention, got {type(model).__name__}")
    if d is not None and model.d != d:
        raise ValueError(f"{name} must have d={d}, got d={model.d}")
    return model


def check_weights(weights, n: int, name: str = "weights", of: str = "points") -> np.ndarray:
    """``weights`` as a float64 array (n,) of finite non-negative numbers with a positive sum
    (the weights of a measure on ``n`` atoms named ``of``)."""
    w = as_real_array(weights, name)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match {of}, got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    if n == 0 or not w.sum() > 0:
        raise ValueError(f"{name} must have a positive sum (the measure is empty)")
    return w


def check_cloud_shapes(targets, sources, weights, d: int) -> None:
    """Shapes of a field evaluation (O(1)): targets (M, d), sources (N, d), weights (N,)."""
    for name, x in (("targets", targets), ("sources", sources)):
        if x.ndim != 2 or x.shape[1] != d:
            raise ValueError(f"{name} must have shape (M, {d}) (the model's d), got {x.shape}")
    if weights.shape != (sources.shape[0],):
        raise ValueError(f"weights must have shape ({sources.shape[0]},) to match sources, "
                         f"got {weights.shape}")


def direct_field(targets, sources, weights, model, project: bool = True) -> np.ndarray:
    """Attention field by direct summation, O(M N d) time and O(M d) memory (see
    :func:`continuum.kernels.attention_field` for the equation and the fully checked entry).
    Checks only what the kernel cannot survive: shapes and finite entries (a NaN would reach
    the compiled kernel's integer conversions).

    A causal model (``model.causal``) needs the targets to be the sources in order (M = N):
    target i sums over j <= i only, half the pairs, no N x N temporary (the same blocked
    kernels, each target's last source block cut at j = i); SA normalises over j <= i, USA
    divides by the prefix weight W_i = sum_{j <= i} w_j. ``project=False`` omits P_x^perp
    (the attention output itself, as pre-LayerNorm adds it: :mod:`particles.norms`)."""
    check_model(model)
    targets = np.ascontiguousarray(targets, dtype=np.float64)
    sources = np.asarray(sources, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    check_cloud_shapes(targets, sources, weights, model.d)
    for name, values in (("targets", targets), ("sources", sources), ("weights", weights)):
        check_finite(values, name)
    causal = bool(getattr(model, "causal", False))
    if causal and targets.shape[0] != sources.shape[0]:
        raise ValueError(f"a causal model's targets are its sources in order (target i "
                         f"attends to sources j <= i): targets has {targets.shape[0]} rows, "
                         f"sources {sources.shape[0]}")
    sources_t = np.ascontiguousarray(sources.T)
    out = np.empty_like(targets)
    if targets.shape[0] == 0:
        return out
    radius = float(np.sqrt(np.max(np.einsum("ij,ij->j", sources_t, sources_t))))
    d = targets.shape[1]
    with _threads_for(targets.shape[0] * sources_t.shape[1] * d):
        if d >= GEMM_MIN_D:
            sources = np.ascontiguousarray(sources, dtype=np.float64)
            block = int(min(_BLOCK, max(8, 262144 // (_GEMM_TILE * d))))
            _field_kernel_gemm(targets, sources, sources_t, weights,
                               np.ascontiguousarray(model.A), model.V, float(model.beta),
                               bool(model.normalized), radius, block, causal, bool(project), out)
        else:
            _field_kernel(targets, sources_t, weights, np.ascontiguousarray(model.A.T), model.V,
                          float(model.beta), bool(model.normalized), radius, causal,
                          bool(project), out)
    if causal and not model.normalized:
        prefix = np.cumsum(weights)
        if not np.all(prefix > 0):
            raise ValueError("weights: a causal USA model divides token i's field by the "
                             "weight of its prefix, sum_{j <= i} w_j, so the first weight "
                             "must be positive")
        out /= prefix[:, None]
    if not np.all(np.isfinite(out)):
        raise FloatingPointError(_overflow_reason(targets, radius, weights, model))
    return out


#: log of the largest float64, 709.78: e^x overflows beyond it
LOG_MAX = math.log(np.finfo(np.float64).max)


def _overflow_reason(targets, radius, weights, model) -> str:
    """What made the field overflow, tested in order: USA's kernel e^(beta <Qx, Ky>) beyond
    float64 (its exponent is at most beta ||Q^T K|| |x| |y|); points off the sphere (an
    integrator's stage); else the size of V."""
    far = max(float(np.sqrt(np.max(np.einsum("ij,ij->i", targets, targets)))), radius)
    exponent = float(model.beta * np.linalg.norm(model.A, 2)) * far * radius
    stage = (f"; points lie up to |x| = {far:.3g} off the unit sphere: an integrator's stage "
             "has left it, so its step is too large for the field's scale; take a smaller "
             "step") if far > 1 + 1e-3 else ""
    if not model.normalized and exponent > LOG_MAX:
        return (f"attention field overflowed: USA with beta={model.beta:g}, the kernel "
                f"e^(beta <Qx,Ky>) reaches e^{exponent:.4g} (beta ||Q^T K|| |x| |y|), beyond "
                f"the float64 range (e^{LOG_MAX:.2f}); use SA (normalized=True) or a smaller "
                f"beta{stage}")
    v = float(np.linalg.norm(model.V, 2))
    usa = f" times the USA scale e^{exponent:.4g}" if not model.normalized else ""
    return (f"attention field overflowed: the field's size ||V|| = {v:.3g}{usa} times the "
            f"total weight {float(np.sum(weights)):.3g} exceeds the float64 range; V is too "
            f"large for float64 (rescale V and time together: V / c up to time c T is the "
            f"same flow){stage}")


@nb.njit(parallel=True, fastmath=False, cache=True)
def _energy_kernel(points, weights, A, beta):
    m, d = points.shape
    rows = np.empty(m)
    for i in prange(m):
        ax = np.empty(d)  # A^T x_i, so <x_i, A y> = <A^T x_i, y>
        for a in range(d):
            t = 0.0
            for b in range(d):
                t += A[b, a] * points[i, b]
            ax[a] = t
        total = 0.0
        for j in range(m):
            s = 0.0
            for a in range(d):
                s += ax[a] * points[j, a]
            total += weights[j] * (math.expm1(beta * s) / beta if beta > 0 else s)
        rows[i] = weights[i] * total
    return 0.5 * rows.sum()


@nb.njit(parallel=True, fastmath=False, cache=True)
def _log_row_kernel(points, weights, A, beta):
    """log sum_j w_j e^{beta <x_i, A x_j>} for every i, shifted by the row's maximum score (so
    no exponential overflows); -inf for an empty row."""
    m, d = points.shape
    out = np.empty(m)
    for i in prange(m):
        ax = np.empty(d)
        for a in range(d):
            t = 0.0
            for b in range(d):
                t += A[b, a] * points[i, b]
            ax[a] = t
        top = -np.inf
        for j in range(m):
            if weights[j] > 0:
                s = 0.0
                for a in range(d):
                    s += ax[a] * points[j, a]
                top = max(top, beta * s)
        total = 0.0
        for j in range(m):
            if weights[j] > 0:
                s = 0.0
                for a in range(d):
                    s += ax[a] * points[j, a]
                total += weights[j] * math.exp(beta * s - top)
        out[i] = top + math.log(total) if total > 0 else -np.inf
    return out


def log_kernel_mean(points, weights, model) -> float:
    """log int int e^{beta <Qx, Ky>} dmu(x) dmu(y) for the probability measure
    sum_j w_j delta_{x_j}, computed in log space (each row shifted by its largest score, the
    rows combined by log-sum-exp), so it is finite for every beta; the interaction energy is
    E = expm1(log_kernel_mean) / (2 beta)."""
    check_model(model)
    points = np.ascontiguousarray(check_points(points, "points", model.d))
    weights = np.ascontiguousarray(check_weights(weights, len(points)))
    rows = _log_row_kernel(points, weights, np.ascontiguousarray(model.A), float(model.beta))
    keep = weights > 0
    terms = np.log(weights[keep]) + rows[keep]
    top = terms.max()
    return float(top + np.log(np.sum(np.exp(terms - top))))


#: beta ||Q^T K|| up to which e^{beta <Qx, Ky>} cannot overflow on the sphere
_SAFE_EXPONENT = 700.0


def interaction_energy(points, weights, model) -> float:
    """Interaction energy of the measure sum_j w_j delta_{x_j}:

    .. math::

        E(\\mu) = \\frac{1}{2\\beta} \\iint \\left(e^{\\beta\\langle Qx, Ky\\rangle} - 1\\right)
                  d\\mu(x)\\, d\\mu(y),

    which differs from (1/(2 beta)) int int e^{beta <Qx,Ky>} by the constant 1/(2 beta) for a
    probability measure and tends to (1/2) int int <Qx, Ky> as beta -> 0 (the value used at
    beta = 0). For USA with Q^T K = V = V^T it obeys dE/dt = int |X[mu]|^2 dmu.

    While beta ||Q^T K|| <= 700 the double sum of expm1 (exact also as beta -> 0); beyond,
    where single terms overflow, from :func:`log_kernel_mean` in log space: finite whenever E
    itself is (inf only if E exceeds the float64 range, about beta > 710 for a cluster).
    """
    check_model(model)
    points = check_points(points, "points", model.d)
    weights = check_weights(weights, len(points))
    radius = float(np.max(np.einsum("ij,ij->i", points, points), initial=0.0))
    if model.beta * np.linalg.norm(model.A, 2) * radius > _SAFE_EXPONENT:
        log_mean = log_kernel_mean(points, weights, model)
        # (e^l - 1) / (2 beta) = e^{l - log(2 beta)} (1 - e^{-l}): e^l alone may overflow
        if log_mean <= 0:
            return float(np.expm1(log_mean) / (2 * model.beta))
        with np.errstate(over="ignore"):
            return float(np.exp(log_mean - np.log(2 * model.beta)) * -np.expm1(-log_mean))
    return float(_energy_kernel(np.ascontiguousarray(points), np.ascontiguousarray(weights),
                                np.ascontiguousarray(model.A), float(model.beta)))
