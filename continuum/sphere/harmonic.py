"""The attention field on S^2 by a spherical-harmonic expansion of the kernel, in O(M + N) with
nonuniform spherical-harmonic transforms (ducc0).

The kernel is expanded in real orthonormal spherical harmonics phi_p (p = (l, m), l <= L) in
both variables. With the scaled kernel k(x, y) = e^{beta <x, A y> - kappa}, kappa = beta ||A||_2
(values in [e^{-2 kappa}, 1], so nothing overflows),

.. math::

    k(x, y) \\approx \\sum_{p, q} K_{pq}\\, \\phi_p(x)\\, \\phi_q(y), \\qquad
    S_f(x) = \\sum_j w_j f(y_j) k(x, y_j) \\approx \\sum_p \\phi_p(x)
             \\sum_q K_{pq} c_q[f], \\quad c_q[f] = \\sum_j w_j f(y_j) \\phi_q(y_j),

for f in {1, y_1, y_2, y_3}; then X(x) = P_x^perp V S_y(x) / S_1(x) (SA) or
P_x^perp V S_y(x) e^{kappa} (USA). The coefficients c (adjoint synthesis at the sources) and the
values at the targets (synthesis) are ducc0's nonuniform transforms
``sht.adjoint_synthesis_general`` / ``sht.synthesis_general``: O(N + L^2 log L) each, no tables.

* Zonal kernels, A = c R with R orthogonal: k depends on <x, R y> only, and Funk-Hecke gives
  K diagonal, K_pp = 4 pi i_l(kappa) e^{-kappa} (i_l the modified spherical Bessel function),
  at the sources rotated by R. Since grad_x e^{kappa <x, R y>} = kappa R y e^{...}, S_y is
  the gradient of S_1 (tangential part by a spin-1 synthesis, radial part from i_l'(kappa)):
  one transform of the weights instead of four (:class:`ZonalTransforms`).
* General A (d = 3): K is computed once per (A, beta, L) by sampling k on a product
  Gauss-Legendre grid ((L + 1) x (2L + 2) nodes per variable, exact for degree <= 2L + 1) and
  analysing it in x, then in y (``sht.analysis_2d``); O(L^4) memory, cached.

Accuracy. L is the smallest degree whose zonal tail sum_{l > L} (2l + 1) i_l(kappa) is below
1e-16 e^{-kappa} (``harmonic_degree``): the truncation error of k is below 1e-16 e^{-2 kappa}
in each variable (for general A, kappa = beta ||A||_2 bounds every direction), and the grid
aliasing of K is of the same size. Each transform is accurate to ``EPSILON`` relative to the
size of what it produces (ducc0's accuracy parameter); taken pointwise against the largest value
a sum can take, m = sum_j w_j (an error model, not a proof), the two transforms leave an absolute
error of about 2 eps m in every S_f, and the ratio S_y / S_1 a relative error of at most

.. math::

    b(x) = 4\\, \\varepsilon\\, m / S_1(x) \\le 4 \\varepsilon e^{2\\kappa}

(S_1 >= e^{-2 kappa} m): the dynamic range of the kernel, the same limit as the FFT path on
S^1. For USA, b bounds the error relative to the field's scale ||V|| e^{kappa} S_1(x). The tests
check b against the direct sum on uniform, concentrated and two-cluster clouds.
:func:`harmonic_field` returns b with the field, so a caller can recompute the targets
where b is too large by the direct sum (``attention_field(method="auto")`` does so above
1e-10). Points off the sphere (Runge-Kutta stages) are evaluated at x / |x| and y / |y|: the
extension of the field off the sphere differs from the direct sum's at O(| |x| - 1 |), which
keeps the integrators' order (the exact flow stays on the sphere).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np
import scipy.special

from ..checks import check_array, check_choice, check_integer, check_memory, check_real
from ..direct import check_cloud_shapes, check_finite, check_model
from ..geometry import check_on_sphere, check_points, tangent_project

__all__ = ["harmonic_field", "harmonic_energy", "transform_preferred", "HarmonicTables",
           "ZonalTransforms", "fixed_points_field", "tables_preferred", "sphere_harmonics",
           "kernel_matrix", "expansion_degree", "real_degrees",
           "harmonic_degree", "zonal_factor", "gauss_grid", "to_real", "from_real", "EPSILON",
           "MAX_DEGREE", "TRUSTED_BOUND", "TRANSFORM_MIN_PAIRS", "AUTO_MAX_KAPPA",
           "ENERGY_MIN_BETA", "GRADIENT_MIN_KAPPA"]

#: accuracy parameter of the ducc0 transforms (float64 needs > 2e-13)
EPSILON = 3e-13
#: largest degree of the expansion (general A: K has (L + 1)^4 entries, 100 MB at L = 56)
MAX_DEGREE = 56
#: "auto" keeps the expansion's value at a target only where the bound b is below this
TRUSTED_BOUND = 1e-10
#: "auto" uses the expansion from this many target-source pairs on: the measured crossover with
#: the direct sum is near 1e6 pairs (N ~ 1000, one thread); 4x above it, as on S^1
TRANSFORM_MIN_PAIRS = 1 << 22
#: tables (HarmonicTables) for fixed point sets up to this many entries (M + N)(L + 1)^2 and
#: kappa <= TABLES_MAX_KAPPA where fixed_points_field takes no ZonalTransforms: measured against
#: attention_field's transforms (which recompute the angles), crossover between level 4
#: (7682 points, L = 15: tables 3x faster) and level 5 (30722 points: transforms 1.2x faster)
TABLES_MAX_ENTRIES = 1 << 22
#: kappa up to which tables are used: round-off (L + 1)^2 u e^{2 kappa} < 1e-11, no fallback
TABLES_MAX_KAPPA = 2.0
#: "auto" uses the expansion up to this kappa = beta ||Q^T K|| (L = 39; beyond, the dynamic
#: range e^{2 kappa} leaves most targets to the direct sum anyway)
AUTO_MAX_KAPPA = 9.0
#: zonal kernels take S_y from the gradient of S_1 from this kappa on (below, the division by
#: kappa would amplify the transforms' error; measured within the bound b at kappa = 0.5)
GRADIENT_MIN_KAPPA = 0.5
#: "auto" computes the interaction energy by the expansion only for beta >= this (its error
#: bound eps e^kappa m^2 / beta is then below 1e-9)
ENERGY_MIN_BETA = 1e-3


def zonal_factor(A: np.ndarray, tol: float = 1e-12):
    """(c, R) if A = c R with R orthogonal (c > 0), else None."""
    A = check_array(A, "A", ndim=2)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix, got shape {A.shape}")
    tol = check_real(tol, "tol", low=0, low_open=True)
    gram = A.T @ A
    c2 = float(np.trace(gram)) / A.shape[0]
    if c2 <= 0 or np.max(np.abs(gram - c2 * np.eye(A.shape[0]))) > tol * c2:
        return None
    c = math.sqrt(c2)
    return c, A / c


@lru_cache(maxsize=64)
def harmonic_degree(kappa: float, tol: float = 1e-16) -> int:
    """Smallest L with sum_{l > L} (2l + 1) i_l(kappa) <= tol e^{-kappa} (kernel tail below the
    smallest value the kernel takes, e^{-kappa}, times tol). Cached: the solvers ask at every
    stage."""
    kappa = check_real(kappa, "kappa", low=0)
    tol = check_real(tol, "tol", low=0, low_open=True)
    ls = np.arange(0, 400)
    terms = (2 * ls + 1) * scipy.special.spherical_in(ls, kappa)
    tail = np.cumsum(terms[::-1])[::-1]  # tail[l] = sum_{l' >= l}
    ok = np.nonzero(tail <= tol * math.exp(-kappa))[0]
    if ok.size == 0:
        raise ValueError(f"kappa = {kappa} needs more than 400 harmonic degrees")
    return max(int(ok[0]) - 1, 0)


def _loc(points: np.ndarray) -> np.ndarray:
    """(colatitude, longitude) of the directions of ``points`` (rows need not be unit)."""
    r = np.linalg.norm(points, axis=1)
    return np.stack([np.arccos(np.clip(points[:, 2] / r, -1.0, 1.0)),
                     np.mod(np.arctan2(points[:, 1], points[:, 0]), 2 * np.pi)], axis=-1)


@numba.njit(cache=True)
def _spherical_coordinates(points, R, frames_wanted):
    """One pass over ``points`` (N, 3), rows need not be unit: (colatitude, longitude) of
    p / |p| as ducc0 takes them (N, 2), the radii |p| (N,), and if ``frames_wanted`` the rows
    (e_theta, e_phi, e_r) of the local frame times R (N, 3, 3), from the Cartesian components
    (e_theta = (z x, z y, -rho) / rho', e_phi = (-y, x, 0) / rho with rho = sqrt(x^2 + y^2);
    at the poles phi = 0)."""
    n = points.shape[0]
    loc = np.empty((n, 2))
    radii = np.empty(n)
    frames = np.empty((n if frames_wanted else 0, 3, 3))
    for i in range(n):
        x, y, z = points[i, 0], points[i, 1], points[i, 2]
        r = math.sqrt(x * x + y * y + z * z)
        radii[i] = r
        x, y, z = x / r, y / r, z / r
        rho = math.sqrt(x * x + y * y)
        loc[i, 0] = math.acos(min(1.0, max(-1.0, z)))
        phi = math.atan2(y, x)
        loc[i, 1] = phi + 2 * math.pi if phi < 0 else phi
        if frames_wanted:
            if rho > 0:
                cp, sp = x / rho, y / rho
            else:
                cp, sp = 1.0, 0.0
            basis = ((z * cp, z * sp, -rho), (-sp, cp, 0.0), (x, y, z))
            for k in range(3):
                for j in range(3):
                    frames[i, k, j] = (basis[k][0] * R[0, j] + basis[k][1] * R[1, j]
                                       + basis[k][2] * R[2, j])
    return loc, radii, frames


@numba.njit(cache=True)
def _combine_frames(d_theta, d_phi, dr, frames):
    """sum_k d_k frames[:, k]: (M, 3)."""
    out = np.empty((d_theta.shape[0], 3))
    for i in range(d_theta.shape[0]):
        for j in range(3):
            out[i, j] = (d_theta[i] * frames[i, 0, j] + d_phi[i] * frames[i, 1, j]
                         + dr[i] * frames[i, 2, j])
    return out


@lru_cache(maxsize=8)
def _orders(L: int) -> np.ndarray:
    """m of each coefficient in ducc0's (healpy, m-major) layout, l <= L."""
    L = _check_degree(L)
    out = np.concatenate([np.full(L + 1 - m, m) for m in range(L + 1)])
    out.setflags(write=False)
    return out


def _check_degree(L, name: str = "L", per_coefficient: float = 24.0) -> int:
    """The degree L: an integer >= 0 whose (L + 1)^2 coefficients, ``per_coefficient`` bytes
    each, fit in memory."""
    L = check_integer(L, name, low=0)
    check_memory(per_coefficient * (L + 1) ** 2, name, f"(L + 1)^2 coefficients at L = {L}")
    return L


def _check_layout(values, L, size: int, name: str) -> None:
    """``values``' last axis holds the ``size`` coefficients of degree L (else ValueError)."""
    if values.ndim == 0 or values.shape[-1] != size:
        raise ValueError(f"{name} must have {size} coefficients (degree L={L}) on its last "
                         f"axis, got shape {values.shape}")


def _degrees(L: int) -> np.ndarray:
    """l of each coefficient in ducc0's (healpy, m-major) layout, l <= L."""
    return np.concatenate([np.arange(m, L + 1) for m in range(L + 1)])


@lru_cache(maxsize=32)
def real_degrees(L: int) -> np.ndarray:
    """Degree l of every real coefficient, in the order of :func:`to_real`."""
    L = _check_degree(L)
    order, degree = _orders(L), _degrees(L)
    out = np.concatenate([degree[order == 0], degree[order > 0], degree[order > 0]])
    out.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def _funk_hecke(L: int, kappa: float, derivative: bool = False) -> np.ndarray:
    """Funk-Hecke eigenvalues 4 pi i_l(kappa) e^{-kappa} of the zonal kernel (or with
    i_l'(kappa)) for every real coefficient, in the order of :func:`to_real`; cached."""
    out = 4 * math.pi * scipy.special.spherical_in(real_degrees(L), kappa,
                                                   derivative=derivative) \
        * math.exp(-kappa)
    out.setflags(write=False)
    return out


def to_real(alm: np.ndarray, L: int) -> np.ndarray:
    """Real coordinates of complex coefficients (m >= 0, healpy layout) in the orthonormal basis
    phi_{l0} = Y_l0, phi^c_{lm} = sqrt 2 Re Y_lm, phi^s_{lm} = -sqrt 2 Im Y_lm (m > 0):
    (Re a_{l0}; sqrt 2 Re a_{lm}; sqrt 2 Im a_{lm}). The same map takes ducc0's adjoint
    synthesis output to (sum_j g_j phi_p(y_j))_p, and analysis output to (int f phi_p)_p."""
    pos = _orders(L) > 0
    alm = np.asarray(alm)
    _check_layout(alm, L, pos.size, "alm")
    return np.concatenate([alm[..., ~pos].real, math.sqrt(2) * alm[..., pos].real,
                           math.sqrt(2) * alm[..., pos].imag], axis=-1)


def from_real(r: np.ndarray, L: int) -> np.ndarray:
    """Inverse of :func:`to_real`: synthesis of the result is sum_p r_p phi_p."""
    pos = _orders(L) > 0
    r = np.asarray(r)
    _check_layout(r, L, (L + 1) ** 2, "r")
    n0, npos = int((~pos).sum()), int(pos.sum())
    alm = np.empty(r.shape[:-1] + (pos.size,), dtype=complex)
    alm[..., ~pos] = r[..., :n0]
    alm[..., pos] = (r[..., n0:n0 + npos] + 1j * r[..., n0 + npos:]) / math.sqrt(2)
    return alm


def gauss_grid(L: int, shape: tuple | None = None):
    """Nodes (ntheta * nphi, 3) of ducc0's "GL" grid (theta ascending, phi from 0) and its
    shape, by default (L + 1, 2L + 2), the grid of degree L."""
    if shape is None:
        L = check_integer(L, "L", low=0)
        ntheta, nphi = L + 1, 2 * L + 2
    else:
        if not isinstance(shape, tuple) or len(shape) != 2:
            raise TypeError(f"shape must be a tuple (ntheta, nphi), got {shape!r}")
        ntheta, nphi = (check_integer(n, name, low=1) for n, name in zip(shape, ("ntheta",
                                                                                   "nphi")))
    check_memory(56.0 * ntheta * nphi, "L" if shape is None else "shape",
                 f"a {ntheta} x {nphi} Gauss-Legendre grid")
    z = np.polynomial.legendre.leggauss(ntheta)[0][::-1]
    phi = 2 * np.pi * np.arange(nphi) / nphi
    zz, pp = np.meshgrid(z, phi, indexing="ij")
    s = np.sqrt(1.0 - zz**2)
    return np.stack([s * np.cos(pp), s * np.sin(pp), zz], axis=-1).reshape(-1, 3), (ntheta, nphi)


@lru_cache(maxsize=4)
def _kernel_matrix_cached(A_bytes: bytes, beta: float, L: int) -> np.ndarray:
    import ducc0

    A = np.frombuffer(A_bytes).reshape(3, 3)
    kappa = beta * np.linalg.norm(A, 2)
    grid, shape = gauss_grid(L)
    sampled = np.exp(beta * (grid @ A) @ grid.T - kappa)  # k(x_a, y_b), rows x, columns y
    P = (L + 1) ** 2
    half = np.empty((P, len(grid)))  # int k(x, y_b) phi_p(x) dx
    for b in range(len(grid)):
        alm = ducc0.sht.analysis_2d(map=sampled[:, b].reshape(1, *shape), spin=0, lmax=L,
                                    geometry="GL")[0]
        half[:, b] = to_real(alm, L)
    K = np.empty((P, P))
    for p in range(P):
        alm = ducc0.sht.analysis_2d(map=half[p].reshape(1, *shape), spin=0, lmax=L,
                                    geometry="GL")[0]
        K[p] = to_real(alm, L)
    K.setflags(write=False)
    return K


def kernel_matrix(A: np.ndarray, beta: float, L: int) -> np.ndarray:
    """K_pq = int int e^{beta <x, A y> - kappa} phi_p(x) phi_q(y) dx dy (kappa = beta ||A||_2),
    p, q real harmonics of degree <= L in the order of :func:`to_real`; cached per (A, beta, L).
    """
    A = np.ascontiguousarray(check_array(A, "A", shape=(3, 3)))
    beta = check_real(beta, "beta", low=0)
    L = check_integer(L, "L", low=0, high=MAX_DEGREE)
    return _kernel_matrix_cached(A.tobytes(), float(beta), int(L))


def expansion_degree(model) -> int:
    """L of the expansion: ``harmonic_degree(beta ||Q^T K||_2)``."""
    check_model(model)
    return harmonic_degree(float(model.beta * np.linalg.norm(model.A, 2)))


def transform_preferred(model, n_targets: int, n_sources: int) -> bool:
    """The "auto" choice on S^2: the expansion for clouds of at least TRANSFORM_MIN_PAIRS pairs
    with kappa = beta ||Q^T K|| <= AUTO_MAX_KAPPA (any A)."""
    check_model(model)
    n_targets = check_integer(n_targets, "n_targets", low=0)
    n_sources = check_integer(n_sources, "n_sources", low=0)
    return (model.d == 3 and n_targets * n_sources >= TRANSFORM_MIN_PAIRS
            and model.beta * np.linalg.norm(model.A, 2) <= AUTO_MAX_KAPPA)


def _kernel_sums(targets, sources, maps, model, nthreads: int = 1) -> np.ndarray:
    """S_f(x) = sum_j f_j k(x, y_j) at the targets for each row f of ``maps`` (F, N): the
    expansion of the module docstring (adjoint synthesis, K, synthesis). Returns (F, M)."""
    import ducc0

    if model.d != 3:
        raise ValueError(f"the spherical-harmonic field is for S^2 (d = 3), got d={model.d}")
    L = expansion_degree(model)
    if L > MAX_DEGREE:
        raise ValueError(f"beta ||Q^T K|| = {model.beta * np.linalg.norm(model.A, 2):.3g} needs "
                         f"degree {L} > {MAX_DEGREE}: use method='direct'")
    kappa = float(model.beta * np.linalg.norm(model.A, 2))
    zonal = zonal_factor(model.A)
    src = np.asarray(sources, dtype=np.float64)
    loc = _loc(src @ zonal[1].T if zonal is not None else src)
    coeffs = np.stack([to_real(ducc0.sht.adjoint_synthesis_general(
        map=f[None], spin=0, lmax=L, loc=loc, epsilon=EPSILON, nthreads=nthreads)[0], L)
        for f in maps])  # (F, P)
    if zonal is not None:
        coeffs = coeffs * _funk_hecke(L, kappa)
    else:
        coeffs = coeffs @ kernel_matrix(model.A, model.beta, L).T
    tgt = np.asarray(targets, dtype=np.float64)
    loc_t = loc if tgt is src and zonal is None else _loc(tgt)
    return np.stack([ducc0.sht.synthesis_general(
        alm=from_real(c, L)[None], spin=0, lmax=L, loc=loc_t, epsilon=EPSILON,
        nthreads=nthreads)[0] for c in coeffs])


def _zonal_gradient_sums(tgt, src, w, model, nthreads):
    """(S_1, S_y) (M,), (M, 3) for a zonal kernel from one transform of the weights
    (:class:`ZonalTransforms`, built for this one call)."""
    return ZonalTransforms(tgt, src, model).sums(w, nthreads)


class ZonalTransforms:
    """S_1 and S_y at fixed ``targets`` (M, 3) of weights on fixed ``sources`` (N, 3) for a
    zonal kernel A = c R, from transforms of the weights: with y' = R y / |y|,
    kappa = beta c and F_g(x) = sum_j g_j e^{kappa (<x, y'_j> - 1)} extended to R^3,
    grad F_g = kappa sum_j g_j y'_j e^{...}, so on the sphere

        S_{y'}(x) = (grad_S F(x) + x dF(r x)/dr|_{r=1}) / kappa,   S_y = R^T S_{y'},

    with F = sum_l 4 pi i_l(kappa) e^{-kappa} (...) (Funk-Hecke), its radial derivative the same
    sum with 4 pi kappa i_l'(kappa) e^{-kappa}, and grad_S F by ducc0's spin-1 synthesis of the
    same coefficients (mode "DERIV1": d/dtheta and d/(sin theta dphi)). Sources on the sphere:
    S_1 = F_w and S_y from the gradient of the same F_w, one adjoint and three syntheses (one of
    spin 1) instead of four of each. Sources off the sphere (Runge-Kutta stages) are evaluated
    as :func:`harmonic_field`'s four-transform form does, S_f(x) = sum_j w_j f(y_j)
    k(x / |x|, y_j / |y_j|): S_1 = F_w and S_y = |y_j|-weighted gradient, F_g with
    g_j = w_j |y_j| (one adjoint more). Needs kappa >= GRADIENT_MIN_KAPPA (the division by
    kappa). Angles, radii and the targets' frames are computed once, in one compiled pass per
    point set (the DG solver evaluates at the same points at every stage).
    """

    def __init__(self, targets, sources, model):
        check_model(model)
        zonal = zonal_factor(model.A) if model.d == 3 else None
        if zonal is None:
            raise ValueError("ZonalTransforms needs d = 3 and Q^T K = c R with R orthogonal")
        c, self.R = zonal
        self.model = model
        self.kappa = float(model.beta * c)
        if self.kappa < GRADIENT_MIN_KAPPA:
            raise ValueError(f"ZonalTransforms needs kappa = beta c >= {GRADIENT_MIN_KAPPA}, "
                             f"got {self.kappa:.3g}")
        self.L = expansion_degree(model)
        self.targets = np.ascontiguousarray(check_points(targets, "targets", 3))
        sources = np.ascontiguousarray(check_points(sources, "sources", 3))
        self.n_sources = len(sources)
        # rows of the frames: (e_theta, e_phi, e_r) R / kappa, so S_y = sum_k d_k frame_k
        self.loc_targets, radii, self.frames = _spherical_coordinates(
            self.targets, self.R / self.kappa, True)
        if sources is not self.targets or not np.array_equal(self.R, np.eye(3)):
            self.loc_sources, radii, _ = _spherical_coordinates(sources @ self.R.T, self.R,
                                                                False)
        else:  # particles: the targets are the sources
            self.loc_sources = self.loc_targets
        # |y_j| where a source is off the sphere (None: all on it, to 1e-12)
        self.radii = radii if np.abs(radii - 1.0).max(initial=0.0) > 1e-12 else None
        self.value = _funk_hecke(self.L, self.kappa)
        self.radial = self.kappa * _funk_hecke(self.L, self.kappa, derivative=True)
        # USA's factor e^{kappa}, kappa = beta ||A||_2 computed as harmonic_field does
        self.usa_scale = math.exp(float(model.beta * np.linalg.norm(model.A, 2)))

    def sums(self, w, nthreads: int = 1):
        """(S_1 (M,), S_y (M, 3)) of the scaled kernel e^{kappa (<x, R y / |y|> - 1)}."""
        import ducc0

        L = self.L
        w = np.asarray(w, dtype=np.float64)

        def adjoint(g):  # (sum_j g_j phi_p(y'_j))_p
            return to_real(ducc0.sht.adjoint_synthesis_general(
                map=g[None], spin=0, lmax=L, loc=self.loc_sources, epsilon=EPSILON,
                nthreads=nthreads)[0], L)

        of_w = adjoint(w)
        of_g = of_w if self.radii is None else adjoint(w * self.radii)
        common = {"lmax": L, "loc": self.loc_targets, "epsilon": EPSILON, "nthreads": nthreads}
        value = from_real(of_w * self.value, L)[None]
        S1 = ducc0.sht.synthesis_general(alm=value, spin=0, **common)[0]
        dr = ducc0.sht.synthesis_general(alm=from_real(of_g * self.radial, L)[None], spin=0,
                                         **common)[0]
        if of_g is not of_w:
            value = from_real(of_g * self.value, L)[None]
        d_theta, d_phi = ducc0.sht.synthesis_general(alm=value, spin=1, mode="DERIV1", **common)
        return S1, _combine_frames(d_theta, d_phi, dr, self.frames)

    def __call__(self, weights, nthreads: int = 1) -> np.ndarray:
        """The attention field at the targets (SA or USA), as :func:`harmonic_field`; its bound
        b = 4 eps m / S_1 <= 4 eps e^{2 kappa} is not returned (``fixed_points_field`` uses
        this class only where that is below TRUSTED_BOUND)."""
        w = np.asarray(weights, dtype=float)
        if w.shape != (self.n_sources,):
            raise ValueError(f"weights must have shape ({self.n_sources},), got {w.shape}")
        check_finite(w, "weights")
        Z, S_y = self.sums(w, nthreads)
        if self.model.normalized:
            mean = S_y / Z[:, None]
        else:
            mean = S_y * self.usa_scale
        return tangent_project(self.targets, mean @ self.model.V.T)


def _check_transform_input(targets, sources, weights, model, nthreads):
    """(targets, sources, weights) as float64 arrays after the checks no caller may skip: a
    d = 3 Attention, shapes, finite entries (a NaN trips ducc0's assertions), and
    ``nthreads`` an integer >= 0 (0: all cores)."""
    check_model(model, d=3)
    check_integer(nthreads, "nthreads", low=0)
    tgt = np.asarray(targets, dtype=np.float64)
    src = np.asarray(sources, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    check_cloud_shapes(tgt, src, w, 3)
    for name, values in (("targets", tgt), ("sources", src), ("weights", w)):
        check_finite(values, name)
    return tgt, src, w


def harmonic_field(targets, sources, weights, model, nthreads: int = 1):
    """Attention field at ``targets`` (M, 3) of the cloud (``sources`` (N, 3), ``weights`` (N,))
    by the expansion of the module docstring, and the bound b (M,) on its relative error.

    Zonal kernels with kappa >= GRADIENT_MIN_KAPPA take S_y from the gradient of S_1
    (:func:`_zonal_gradient_sums`: one transform of the weights instead of four, two for
    sources off the sphere); the tests hold both forms to the same bound b.
    No input checks (``continuum.kernels.attention_field`` checks); ``model.d`` must be 3 and
    the degree ``expansion_degree(model)`` at most MAX_DEGREE. Checks only what the transforms
    cannot survive (:func:`_check_transform_input`).
    """
    tgt, src, w = _check_transform_input(targets, sources, weights, model, nthreads)
    kappa = float(model.beta * np.linalg.norm(model.A, 2))
    if (model.d == 3 and kappa >= GRADIENT_MIN_KAPPA and zonal_factor(model.A) is not None
            and expansion_degree(model) <= MAX_DEGREE):
        Z, S_y = _zonal_gradient_sums(tgt, src, w, model, nthreads)
    else:
        maps = np.vstack([w, w * src.T])  # f = 1, y_1, y_2, y_3 (the true y; k at y / |y|)
        sums = _kernel_sums(tgt, src, maps, model, nthreads)  # (4, M): S_1, S_y
        Z, S_y = sums[0], sums[1:].T
    mass = float(w.sum())
    bound = np.full(len(tgt), np.inf)
    positive = Z > 0
    bound[positive] = 4 * EPSILON * mass / Z[positive]
    if model.normalized:
        mean = S_y / np.where(positive, Z, 1.0)[:, None]
    else:
        mean = S_y * math.exp(kappa)
    return tangent_project(tgt, mean @ model.V.T), bound


def harmonic_energy(points, weights, model, nthreads: int = 1):
    """Interaction energy E = (1/(2 beta)) sum_ij w_i w_j (e^{beta <x_i, A x_j>} - 1) of a cloud
    on S^2 (beta > 0) by the expansion: E = (e^kappa sum_i w_i S_1(x_i) - m^2) / (2 beta) with
    m = sum w. Returns (E, b) where b = eps e^kappa m^2 / beta is the error model's bound
    (S_1 to 2 eps m absolute at every point, module docstring); the subtraction makes it grow
    like 1/beta, so the dispatcher uses it for beta >= ENERGY_MIN_BETA only."""
    x, _, w = _check_transform_input(points, points, weights, model, nthreads)
    if not model.beta > 0:
        raise ValueError(f"beta: the expansion of the energy needs beta > 0, got {model.beta}")
    kappa = float(model.beta * np.linalg.norm(model.A, 2))
    S1 = _kernel_sums(x, x, w[None], model, nthreads)[0]
    mass = float(w.sum())
    energy = (math.exp(kappa) * float(w @ S1) - mass**2) / (2 * model.beta)
    return energy, EPSILON * math.exp(kappa) * mass**2 / model.beta


# ---------------------------------------------------------------------------------------------
# tables for fixed point sets (the DG solver's vertices and quadrature points)


def tables_preferred(model, n_targets: int, n_sources: int) -> bool:
    """Tables rather than transforms: a zonal kernel, kappa <= TABLES_MAX_KAPPA and at most
    TABLES_MAX_ENTRIES tabulated values (module constants: measured crossover)."""
    check_model(model)
    n_targets = check_integer(n_targets, "n_targets", low=0)
    n_sources = check_integer(n_sources, "n_sources", low=0)
    zonal = zonal_factor(model.A) if model.d == 3 else None
    if zonal is None or model.beta * zonal[0] > TABLES_MAX_KAPPA:
        return False
    L = harmonic_degree(model.beta * zonal[0])
    return (n_targets + n_sources) * (L + 1) ** 2 <= TABLES_MAX_ENTRIES


def fixed_points_field(model, targets, sources, field: str = "auto"):
    """A field evaluator ``f(weights)`` for fixed point sets (the DG solver's vertices and
    quadrature points) that gives what ``attention_field(targets, sources, weights, model,
    method)`` gives ("auto" or "harmonic") without recomputing anything about the points, or
    None where the caller should call ``attention_field``. :class:`ZonalTransforms` where the
    expansion is chosen (``field`` = "harmonic", or "auto" with :func:`transform_preferred`)
    for a zonal kernel with GRADIENT_MIN_KAPPA <= kappa <= TABLES_MAX_KAPPA (its bound
    4 eps e^{2 kappa} is then below TRUSTED_BOUND, so "auto" would keep every target; measured
    2.9x faster than the tables at level 4); else :class:`HarmonicTables`
    where :func:`tables_preferred` (small sets)."""
    check_model(model)
    check_choice(field, "field", ("auto", "kernel", "harmonic"))
    if field == "kernel" or model.d != 3:
        return None
    zonal = zonal_factor(model.A)
    src = np.asarray(sources, dtype=np.float64)
    if (zonal is not None and GRADIENT_MIN_KAPPA <= model.beta * zonal[0] <= TABLES_MAX_KAPPA
            and (field == "harmonic" or transform_preferred(model, len(targets), len(src)))):
        return ZonalTransforms(targets, src, model)
    if tables_preferred(model, len(targets), len(src)):
        return HarmonicTables(targets, src, model)
    return None


def sphere_harmonics(points: np.ndarray, L: int) -> np.ndarray:
    """Real orthonormal spherical harmonics Y_lm at unit vectors ``points`` (M, 3), l <= L.

    Column index l^2 + l + m (m = -l..l). Y_lm = Q_l^|m|(z) * sqrt(2) Re((x + iy)^m) (m > 0),
    Q_l^0(z) (m = 0), Q_l^|m|(z) * sqrt(2) Im((x + iy)^|m|) (m < 0), where
    Q_l^m = Pbar_l^m / sin^m(theta) obeys the fully normalised associated-Legendre recurrence
    (no Condon-Shortley phase) and needs no angles (regular at the poles).
    """
    p = check_points(points, "points", 3)
    check_on_sphere(p, "points")
    L = check_integer(L, "L", low=0)
    check_memory(8.0 * (len(p) + 1) * ((L + 1) ** 2 + 8), "L",
                 f"{len(p)} x (L + 1)^2 harmonic values at L = {L}")
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


class HarmonicTables:
    """Attention field at fixed ``targets`` from weighted clouds on fixed ``sources`` (both
    unit vectors in R^3) for a model with a zonal kernel (``zonal_factor(model.A)`` not None),
    by tabulated real harmonics: the same expansion as :func:`harmonic_field`, two matrix
    products per evaluation, O((M + N)(L + 1)^2) time and memory. Faster than the transforms
    for small point sets and degrees (:func:`tables_preferred`); the DG solver uses it there.

    ``field(weights)`` equals the direct sum
    ``attention_field(targets, sources, weights, model, method="direct")`` to the accuracy
    stated in the module docstring.
    """

    def __init__(self, targets, sources, model, L: int | None = None):
        check_model(model, d=3)
        zonal = zonal_factor(model.A)
        if zonal is None:
            raise ValueError("the harmonic path needs Q^T K = c R with R orthogonal")
        c, R = zonal
        self.kappa = float(model.beta) * c
        self.L = harmonic_degree(self.kappa) if L is None else check_integer(L, "L", low=0)
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
        check_finite(w, "weights")
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
