"""Geometry of S^{d-1}: areas, projections, point sets with quadrature weights.

Kept apart from the equations (model, field) and from the time stepping.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sphere_area", "normalize", "tangent_project", "uniform_points", "circle_grid",
           "gauss_sphere_grid", "fibonacci_sphere", "angles_to_circle"]


def sphere_area(d: int) -> float:
    """|S^{d-1}| = 2 pi^{d/2} / Gamma(d/2) (2 pi for the circle, 4 pi for the 2-sphere)."""
    return 2.0 * math.pi ** (d / 2) / math.gamma(d / 2)


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows of x divided by their Euclidean norm (the retraction onto the sphere)."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def tangent_project(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """P_x^perp v = v - <x, v> x, row by row."""
    return v - np.einsum("ij,ij->i", x, v)[:, None] * x


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
