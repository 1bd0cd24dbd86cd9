"""Negative Sobolev distances between measures on S^1 and S^2, exact from their harmonic
coefficients in O(N + L^2) (S^2: ducc0's nonuniform adjoint transform; S^1: direct sums).

On S^2, with real orthonormal spherical harmonics Y_lm and c_lm(mu) = int Y_lm dmu,

.. math::

    \\|\\mu - \\nu\\|_{H^{-s}}^2 = \\sum_{l=0}^{L} (1 + l(l+1))^{-s}
        \\sum_{m=-l}^{l} |c_{lm}(\\mu) - c_{lm}(\\nu)|^2 ;

on S^1 the same with the Fourier modes e^{ik theta} / sqrt(2 pi), |k| <= L, and weights
(1 + k^2)^{-s}. This is the maximum mean discrepancy of the kernel

.. math::

    k_L(x, y) = \\sum_{l \\le L} (1 + l(l+1))^{-s} \\frac{2l + 1}{4\\pi} P_l(\\langle x, y\\rangle)
    \\quad (S^1: \\textstyle\\sum_{|k| \\le L} (1 + k^2)^{-s} e^{ik(\\theta - \\phi)} / (2\\pi)),

so for N i.i.d. samples of mu, E ||mu_N - mu||^2 = (k_L(x, x) - ||mu||^2) / N exactly
(:func:`sampling_expectation`). The series is truncated at degree L (default 64); since
sum_m |c_lm(mu)|^2 <= (2l + 1) / (4 pi) for a probability measure, the omitted tail of the
squared distance is at most sum_{l > L} (1 + l(l+1))^{-s} (2l + 1) / pi
(:func:`truncation_bound`; about 8e-5 for s = 2, L = 64 on S^2), and much less for the
difference of two measures that agree at low frequencies. For s > 1 (S^2) or s > 1/2 (S^1)
the untruncated norm metrizes weak convergence and is finite for Dirac measures.
"""

from __future__ import annotations

import math

import numpy as np

from .checks import check_integer, check_memory, check_real
from .measure import check_measure, check_measure_pair

__all__ = ["sobolev_distance", "sobolev_coefficients", "coefficient_distance",
           "sampling_expectation", "truncation_bound"]

#: accuracy parameter of ducc0's adjoint transform (float64 needs > 2e-13)
EPSILON = 3e-13


def _weights(d: int, L: int, s: float) -> np.ndarray:
    """Weight of each coefficient returned by :func:`sobolev_coefficients`."""
    if d == 2:
        k = np.arange(-L, L + 1)
        return (1.0 + k**2) ** (-s)
    l = np.concatenate([np.arange(m, L + 1) for m in range(L + 1)])
    m = np.concatenate([np.full(L + 1 - m, m) for m in range(L + 1)])
    # ducc0's complex coefficients for m >= 0: |c_l0|^2 + 2 sum_{m>0} |a_lm|^2 = sum_m |c_lm|^2
    return np.where(m > 0, 2.0, 1.0) * (1.0 + l * (l + 1.0)) ** (-s)


def sobolev_coefficients(mu, L: int = 64) -> np.ndarray:
    """Harmonic coefficients of a Measure on S^1 (c_k, |k| <= L) or S^2 (ducc0 layout, m >= 0)."""
    check_measure(mu, "mu")
    L = _check_degree(L, mu.d)
    if mu.d == 2:
        z = mu.points[:, 0] - 1j * mu.points[:, 1]  # e^{-i theta}
        z = z / np.abs(z)
        out = np.empty(2 * L + 1, dtype=complex)
        power = np.ones_like(z)
        out[L] = mu.weights.sum()
        for k in range(1, L + 1):
            power = power * z
            out[L + k] = mu.weights @ power
            out[L - k] = np.conj(out[L + k])
        return out / math.sqrt(2 * math.pi)
    if mu.d == 3:
        import ducc0

        p = mu.points
        loc = np.stack([np.arccos(np.clip(p[:, 2], -1.0, 1.0)),
                        np.mod(np.arctan2(p[:, 1], p[:, 0]), 2 * np.pi)], axis=-1)
        return ducc0.sht.adjoint_synthesis_general(map=mu.weights[None], spin=0, lmax=L,
                                                   loc=loc, epsilon=EPSILON)[0]
    raise ValueError(f"sobolev distances are implemented on S^1 and S^2 (d = 2, 3), got d={mu.d}")


def _size(d: int, L: int) -> int:
    """Number of coefficients of degree <= L: 2L + 1 (S^1) or (L + 1)(L + 2) / 2 (S^2)."""
    return 2 * L + 1 if d == 2 else (L + 1) * (L + 2) // 2


def _check_degree(L, d) -> int:
    """The truncation degree L: an integer >= 1 whose coefficients (complex, with the weights
    and their work arrays: about 64 bytes each on S^2, 16 N on S^1's power loop) fit in
    memory; ``d`` 2 or 3."""
    L = check_integer(L, "L", low=1)
    if d not in (2, 3):
        raise ValueError(f"sobolev distances are implemented on S^1 and S^2 (d = 2, 3), "
                         f"got d={d}")
    check_memory(64.0 * _size(d, L), "L", f"{_size(d, L)} harmonic coefficients (degree {L})")
    return L


def _check(s, L, d):
    """(s, L) checked: s > 0 a real number, L as :func:`_check_degree`."""
    return check_real(s, "s", low=0, low_open=True), _check_degree(L, d)


def _check_coefficients(c, name: str, d: int, L: int) -> np.ndarray:
    """Coefficients in the layout of :func:`sobolev_coefficients` for degree L: a 1-d array of
    (real or complex) finite numbers of length 2L + 1 (S^1) or (L + 1)(L + 2) / 2 (S^2)."""
    try:
        c = np.asarray(c)
    except ValueError:
        raise ValueError(f"{name} must be a 1-d array of coefficients; got a ragged "
                         "sequence") from None
    if c.dtype.kind not in "iufc":
        raise TypeError(f"{name} must hold numbers, got dtype {c.dtype}")
    if c.shape != (_size(d, L),):
        raise ValueError(f"{name} must have shape ({_size(d, L)},), the coefficients of degree "
                         f"<= L={L} on S^{d - 1}, got {c.shape} (coefficients of different "
                         "degree?)")
    if not np.all(np.isfinite(c)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return c


def sobolev_distance(mu, nu, s: float = 2.0, L: int = 64) -> float:
    """||mu - nu||_{H^{-s}} truncated at degree L (module docstring), exact up to round-off."""
    check_measure_pair(mu, nu)
    s, L = _check(s, L, mu.d)
    return coefficient_distance(sobolev_coefficients(mu, L), sobolev_coefficients(nu, L),
                                mu.d, s, L)


def coefficient_distance(c_mu, c_nu, d: int, s: float = 2.0, L: int = 64) -> float:
    """||mu - nu||_{H^{-s}} from harmonic coefficients in the layout of
    :func:`sobolev_coefficients` (for a density known by its coefficients, e.g. the spectral
    S^2 solver's: ``continuum.sphere.harmonic.from_real`` gives that layout)."""
    d = check_integer(d, "d", low=2, high=3)
    s, L = _check(s, L, d)
    diff = _check_coefficients(c_mu, "c_mu", d, L) - _check_coefficients(c_nu, "c_nu", d, L)
    return float(math.sqrt(max(float(_weights(d, L, s) @ np.abs(diff) ** 2), 0.0)))


def kernel_diagonal(d: int, s: float = 2.0, L: int = 64) -> float:
    """k_L(x, x), the same at every point of the sphere."""
    d = check_integer(d, "d", low=2, high=3)
    s, L = _check(s, L, d)
    if d == 2:
        return float(((1.0 + np.arange(-L, L + 1) ** 2) ** (-s)).sum() / (2 * math.pi))
    l = np.arange(L + 1)
    return float(((1.0 + l * (l + 1.0)) ** (-s) * (2 * l + 1)).sum() / (4 * math.pi))


def sampling_expectation(mu, n: int, s: float = 2.0, L: int = 64) -> float:
    """E ||mu_n - mu||^2_{H^{-s}} for n i.i.d. samples of mu: (k_L(x, x) - ||mu||^2) / n."""
    check_measure(mu, "mu")
    n = check_integer(n, "n (the number of samples)", low=1)
    s, L = _check(s, L, mu.d)
    c = sobolev_coefficients(mu, L)
    return (kernel_diagonal(mu.d, s, L) - float(_weights(mu.d, L, s) @ np.abs(c) ** 2)) / n


def truncation_bound(d: int, s: float = 2.0, L: int = 64, terms: int = 200_000) -> float:
    """Upper bound on the omitted tail of the squared distance between probability measures:
    sum_{l > L} w_l 4 (2l + 1) / (4 pi) (S^2) or sum_{|k| > L} w_k 4 / (2 pi) (S^1), from
    |c(mu) - c(nu)|^2 <= 2 (|c(mu)|^2 + |c(nu)|^2) and sum_m |c_lm|^2 <= (2l + 1) / (4 pi)
    (|c_k|^2 <= 1 / (2 pi)); summed to ``terms`` and the rest bounded by an integral."""
    d = check_integer(d, "d", low=2, high=3)
    s, L = _check(s, L, d)
    terms = check_integer(terms, "terms", low=1)
    check_memory(24.0 * terms, "terms", f"{terms} terms of the tail sum")
    l = np.arange(L + 1, L + 1 + terms, dtype=float)
    if d == 2:
        head = 8 * ((1 + l**2) ** (-s)).sum() / (2 * math.pi)  # both signs of k
        rest = 8 / (2 * math.pi) * (L + terms) ** (1 - 2 * s) / (2 * s - 1) if s > 0.5 else np.inf
        return float(head + rest)
    head = 4 * ((1 + l * (l + 1)) ** (-s) * (2 * l + 1)).sum() / (4 * math.pi)
    rest = 4 / (4 * math.pi) * 2 * (L + terms) ** (2 - 2 * s) / (2 * s - 2) if s > 1 else np.inf
    return float(head + rest)
