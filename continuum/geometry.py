"""Geometry of S^{d-1}: areas, projections, point sets with quadrature weights.

Kept apart from the equations (model, field) and from the time stepping.
"""

from __future__ import annotations

import math

import numpy as np

from .checks import as_real_array

__all__ = ["SPHERE_TOL", "sphere_area", "normalize", "tangent_project", "check_points",
           "check_on_sphere", "uniform_points", "circle_grid", "gauss_sphere_grid",
           "fibonacci_sphere", "angles_to_circle", "von_mises_density"]

#: the one tolerance on | |x| - 1 | for points said to lie on the unit sphere (measures, field
#: inputs, plots): float64 data normalised once are exact to ~1e-16, float32 data are not
SPHERE_TOL = 1e-8


def sphere_area(d: int) -> float:
    """|S^{d-1}| = 2 pi^{d/2} / Gamma(d/2) (2 pi for the circle, 4 pi for the 2-sphere)."""
    return 2.0 * math.pi ** (d / 2) / math.gamma(d / 2)


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows of x divided by their Euclidean norm (the retraction onto the sphere)."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def tangent_project(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """P_x^perp v = v - <x, v> x, row by row."""
    return v - np.einsum("ij,ij->i", x, v)[:, None] * x


def check_points(x, name: str, d: int | None = None) -> np.ndarray:
    """``x`` as a float64 array (M, d) of real numbers (no strings, bools or ragged rows)
    with finite entries (and d columns, if given)."""
    x = as_real_array(x, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (M, d), got shape {x.shape}")
    if d is not None and x.shape[1] != d:
        raise ValueError(f"{name} must have d={d} columns (the model's dimension), "
                         f"got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return x


def check_on_sphere(x: np.ndarray, name: str) -> None:
    """Raise ValueError naming ``name`` unless every row has | |x| - 1 | <= SPHERE_TOL."""
    if x.shape[0] == 0:
        return
    error = np.abs(np.linalg.norm(x, axis=1) - 1.0)
    if error.max() > SPHERE_TOL:
        raise ValueError(f"{name} must lie on the unit sphere: max | |x| - 1 | = "
                         f"{error.max():.3g} > {SPHERE_TOL:g} (row {int(error.argmax())}); "
                         "normalise the rows")


def uniform_points(n: int, d: int, rng) -> np.ndarray:
    """n iid uniform points on S^{d-1} (normalised Gaussians)."""
    return normalize(rng.standard_normal((n, d)))


def angles_to_circle(theta) -> np.ndarray:
    """Points (cos theta, sin theta), shape (n, 2)."""
    theta = np.asarray(theta, dtype=np.float64)
    return np.stack([np.cos(theta), np.sin(theta)], axis=-1)


def circle_grid(n: int):
    """Equispaced points theta_j = 2 pi j / n on S^1 and probability weights 1/n.

    The rule integrates trigonometric polynomials of degree < n exactly (w.r.t. the
    normalised measure d theta / 2 pi).
    """
    theta = 2 * np.pi * np.arange(n) / n
    return angles_to_circle(theta), np.full(n, 1.0 / n)


def gauss_sphere_grid(n_lat: int):
    """Gauss-Legendre (in z = cos(colatitude)) x equispaced (2 n_lat longitudes) grid on S^2.

    Returns points (2 n_lat^2, 3) and probability weights (summing to 1). The rule integrates
    every spherical harmonic of degree < 2 n_lat exactly w.r.t. sigma / (4 pi); it is
    symmetric under z -> -z and under rotations by multiples of 2 pi / (2 n_lat) about e_z.
    """
    z, wz = np.polynomial.legendre.leggauss(n_lat)
    n_lon = 2 * n_lat
    phi = 2 * np.pi * (np.arange(n_lon) + 0.5) / n_lon
    zz, pp = np.meshgrid(z, phi, indexing="ij")
    s = np.sqrt(1 - zz**2)
    points = np.stack([s * np.cos(pp), s * np.sin(pp), zz], axis=-1).reshape(-1, 3)
    weights = np.repeat(wz / 2, n_lon) / n_lon
    return points, weights


def fibonacci_sphere(n: int) -> np.ndarray:
    """n quasi-uniform points on S^2 (spherical Fibonacci lattice), equal-area in z."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = np.pi * (1 + 5**0.5) * i
    s = np.sqrt(1 - z**2)
    return np.stack([s * np.cos(phi), s * np.sin(phi), z], axis=-1)


def von_mises_density(points, mean, kappa: float) -> np.ndarray:
    """von Mises-Fisher density on S^{d-1} w.r.t. the surface measure,

    .. math::

        \\rho(x) = C_d(\\kappa)\\, e^{\\kappa \\langle m, x\\rangle}, \\qquad
        C_d(\\kappa) = \\frac{\\kappa^{d/2-1}}{(2\\pi)^{d/2} I_{d/2-1}(\\kappa)},

    (d = 2: 1 / (2 pi I_0(kappa)); d = 3: kappa / (4 pi sinh kappa)), evaluated as
    e^{kappa (<m, x> - 1)} kappa^{d/2-1} / ((2 pi)^{d/2} ive_{d/2-1}(kappa)) so that large kappa
    does not overflow; kappa = 0 is the uniform density 1 / |S^{d-1}|. ``mean`` is normalised.
    """
    from scipy.special import ive

    points = np.asarray(points, dtype=np.float64)
    m = np.asarray(mean, dtype=np.float64)
    if m.shape != (points.shape[1],) or not np.linalg.norm(m) > 0:
        raise ValueError(f"mean must be a non-zero vector of length d={points.shape[1]}, "
                         f"got {mean!r}")
    kappa = float(kappa)
    if not np.isfinite(kappa) or kappa < 0:
        raise ValueError(f"kappa must be finite and >= 0, got {kappa}")
    d = points.shape[1]
    if kappa == 0:
        return np.full(len(points), 1.0 / sphere_area(d))
    nu = d / 2 - 1
    log_c = nu * math.log(kappa) - (d / 2) * math.log(2 * math.pi) - math.log(ive(nu, kappa))
    return np.exp(kappa * (points @ (m / np.linalg.norm(m)) - 1.0) + log_c)
