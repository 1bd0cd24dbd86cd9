"""The attention field on S^2 by a spherical-harmonic expansion of the kernel, for zonal kernels.

When A = Q^T K = c R with R orthogonal (Q = K = I, or any multiple of a rotation/reflection),
the score is beta <Qx, Ky> = kappa <x, R y> with kappa = beta c, and the kernel is zonal in
(x, R y). Funk-Hecke / the addition theorem give

    e^{kappa t} = sum_l (2l + 1) i_l(kappa) P_l(t),
    P_l(<x, z>) = 4 pi / (2l + 1) sum_{m=-l..l} Y_lm(x) Y_lm(z),

(i_l the modified spherical Bessel function of the first kind, Y_lm the real orthonormal
spherical harmonics), so for any weighted cloud (y_j, w_j) and f in {1, y_1, y_2, y_3}

    sum_j w_j e^{kappa <x, R y_j>} f(y_j) = 4 pi sum_{l <= L} i_l(kappa) sum_m Y_lm(x) c_lm[f],
    c_lm[f] = sum_j w_j f(y_j) Y_lm(R y_j).

The field X(x) = P_x^perp V (numerator / Z) then costs two matrix products,
O((M + N) (L + 1)^2), instead of the direct kernel's O(M N); the harmonics at the fixed targets
(mesh vertices) and sources (quadrature points) are computed once. This is what makes the DG
solver's nonlocal term cheap (it was 95% of a step with the direct kernel).

Accuracy: L is chosen so that the truncated tail sum_{l > L} (2l + 1) i_l(kappa) is below
1e-16 e^{-kappa}; the round-off of the sum relative to the smallest possible Z (e^{-kappa} times
the mass, against terms up to e^{kappa}) is about (L + 1)^2 u e^{2 kappa} (u = 2.2e-16), the same
dynamic-range limit as the FFT path on S^1; "auto" uses this path only for kappa <= 9.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special

from ..geometry import tangent_project

__all__ = ["sphere_harmonics", "harmonic_degree", "zonal_factor", "HarmonicField",
           "HARMONIC_MAX_KAPPA"]

#: like FFT_MAX_BETA_C on S^1: round-off ~ (L + 1)^2 u e^{2 kappa} stays below ~1e-5 relative
HARMONIC_MAX_KAPPA = 9.0


def zonal_factor(A: np.ndarray, tol: float = 1e-12):
    """(c, R) if A = c R with R orthogonal (c > 0), else None."""
    A = np.asarray(A, dtype=float)
    gram = A.T @ A
    c2 = float(np.trace(gram)) / A.shape[0]
    if c2 <= 0 or np.max(np.abs(gram - c2 * np.eye(A.shape[0]))) > tol * c2:
        return None
    c = math.sqrt(c2)
    return c, A / c


def harmonic_degree(kappa: float, tol: float = 1e-16) -> int:
    """Smallest L with sum_{l > L} (2l + 1) i_l(kappa) <= tol e^{-kappa} (kernel tail below the
    smallest value the kernel takes, e^{-kappa}, times tol)."""
    if kappa < 0:
        raise ValueError(f"kappa must be >= 0, got {kappa}")
    ls = np.arange(0, 400)
    terms = (2 * ls + 1) * scipy.special.spherical_in(ls, kappa)
    tail = np.cumsum(terms[::-1])[::-1]  # tail[l] = sum_{l' >= l}
    ok = np.nonzero(tail <= tol * math.exp(-kappa))[0]
    if ok.size == 0:
        raise ValueError(f"kappa = {kappa} needs more than 400 harmonic degrees")
    return max(int(ok[0]) - 1, 0)


def sphere_harmonics(points: np.ndarray, L: int) -> np.ndarray:
    """Real orthonormal spherical harmonics Y_lm at unit vectors ``points`` (M, 3), l <= L.

    Column index l^2 + l + m (m = -l..l). Y_lm = Q_l^|m|(z) * sqrt(2) Re((x + iy)^m) (m > 0),
    Q_l^0(z) (m = 0), Q_l^|m|(z) * sqrt(2) Im((x + iy)^|m|) (m < 0), where
    Q_l^m = Pbar_l^m / sin^m(theta) obeys the fully normalised associated-Legendre recurrence
    (no Condon-Shortley phase) and needs no angles (regular at the poles).
    """
    p = np.asarray(points, dtype=float)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    out = np.empty((len(p), (L + 1) ** 2))
    power = np.ones(len(p), dtype=complex)  # (x + iy)^m
    xy = x + 1j * y
    qmm = 1.0 / math.sqrt(4 * math.pi)  # Q_m^m, a constant
    for m in range(L + 1):
        if m > 0:
            qmm *= math.sqrt((2 * m + 1) / (2 * m))
            power = power * xy
        cos_part = math.sqrt(2) * power.real if m else np.ones(len(p))
        sin_part = math.sqrt(2) * power.imag
        q_prev2 = None
        q_prev = np.full(len(p), qmm)
        for l in range(m, L + 1):
            if l == m:
                q = q_prev
            elif l == m + 1:
                q = math.sqrt(2 * m + 3) * z * q_prev
            else:
                a = math.sqrt((4 * l * l - 1) / (l * l - m * m))
                b = math.sqrt(((l - 1) ** 2 - m * m) / (4 * (l - 1) ** 2 - 1))
                q = a * (z * q_prev - b * q_prev2)
            if l > m:
                q_prev2, q_prev = q_prev, q
            out[:, l * l + l + m] = q * cos_part
            if m:
                out[:, l * l + l - m] = q * sin_part
    return out


class HarmonicField:
    """Attention field at fixed ``targets`` from weighted clouds on fixed ``sources`` (both
    unit vectors in R^3) for a model with a zonal kernel (``zonal_factor(model.A)`` not None).

    ``field(weights)`` equals the direct sum
    ``attention_field(targets, sources, weights, model, method="direct")`` to the accuracy
    stated in the module docstring.
    """

    def __init__(self, targets, sources, model, L: int | None = None):
        if model.d != 3:
            raise ValueError(f"HarmonicField is for S^2 (d = 3), got d = {model.d}")
        zonal = zonal_factor(model.A)
        if zonal is None:
            raise ValueError("the harmonic path needs Q^T K = c R with R orthogonal")
        c, R = zonal
        self.kappa = float(model.beta) * c
        self.L = harmonic_degree(self.kappa) if L is None else int(L)
        self.model = model
        self.targets = np.ascontiguousarray(targets, dtype=float)
        self.sources = np.ascontiguousarray(sources, dtype=float)
        self.Y_targets = sphere_harmonics(self.targets, self.L)
        self.Y_sources = sphere_harmonics(self.sources @ R.T, self.L)  # Y_lm(R y_j)
        degrees = np.repeat(np.arange(self.L + 1), 2 * np.arange(self.L + 1) + 1)
        # 4 pi i_l(kappa) e^{-kappa}: scaled so nothing overflows; e^{kappa} cancels for SA
        self.lam = 4 * math.pi * scipy.special.spherical_in(degrees, self.kappa) \
            * math.exp(-self.kappa)
        self.f_sources = np.column_stack([np.ones(len(self.sources)), self.sources])

    def __call__(self, weights) -> np.ndarray:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(self.sources),):
            raise ValueError(f"weights must have shape ({len(self.sources)},), got {w.shape}")
        coeffs = self.Y_sources.T @ (w[:, None] * self.f_sources)  # c_lm[f], ((L+1)^2, 4)
        sums = self.Y_targets @ (self.lam[:, None] * coeffs)  # e^{-kappa} sum_j w_j k f
        if self.model.normalized:
            Z = sums[:, 0]
            if np.any(Z <= 0):
                raise FloatingPointError("harmonic field: normaliser Z <= 0 (kappa too large "
                                         "for this path; use field='kernel')")
            mean = sums[:, 1:] / Z[:, None]
        else:
            mean = sums[:, 1:] * math.exp(self.kappa)
        v = mean @ self.model.V.T
        return tangent_project(self.targets, v)
