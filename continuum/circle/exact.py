"""Exact solutions used to verify solvers and particle runs.

Kuramoto / wrapped Cauchy (S^1, SA, beta = 0, V = I). With beta = 0 the field is
X[mu](x) = P_x^perp m, m = int y dmu, i.e. the Kuramoto model with unit coupling and
identical oscillators. Wrapped-Cauchy (Poisson-kernel) densities

.. math::

    \\rho(\\theta) = \\frac{1 - r^2}{2\\pi (1 - 2 r \\cos(\\theta - \\psi) + r^2)}

stay in the family, psi is constant, and the order parameter obeys r' = r (1 - r^2) / 2, so

.. math::

    r(t)^2 = \\frac{r_0^2 e^t}{1 - r_0^2 + r_0^2 e^t}.
"""

from __future__ import annotations

import numpy as np

from ..checks import as_real_array, check_integer, check_memory, check_real, check_seed
from ..geometry import check_on_sphere, check_points

__all__ = ["kuramoto_order_parameter", "wrapped_cauchy_density", "sample_wrapped_cauchy"]


def kuramoto_order_parameter(t, r0: float):
    """r(t) of the wrapped-Cauchy solution (SA, beta = 0, V = I on S^1)."""
    r0 = check_real(r0, "r0", low=0, high=1, high_open=True)
    t = as_real_array(t, "t")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("t must hold finite times >= 0")
    e = np.exp(t)
    return np.sqrt(r0**2 * e / (1 - r0**2 + r0**2 * e))


def wrapped_cauchy_density(points, r: float, psi: float = 0.0):
    """Wrapped-Cauchy density (w.r.t. arc length) at points (M, 2) of S^1."""
    r = check_real(r, "r", low=0, high=1, high_open=True)
    psi = check_real(psi, "psi")
    points = check_points(points, "points", 2)
    check_on_sphere(points, "points")
    c = points[:, 0] * np.cos(psi) + points[:, 1] * np.sin(psi)  # cos(theta - psi)
    return (1 - r**2) / (2 * np.pi * (1 - 2 * r * c + r**2))


def sample_wrapped_cauchy(n: int, r: float, psi: float = 0.0, seed=0):
    """n iid points of the wrapped-Cauchy law with mean resultant w = r e^{i psi}.

    e^{i theta} = (e^{iz} + w) / (1 + conj(w) e^{iz}) with z uniform on [0, 2 pi).
    """
    n = check_integer(n, "n", low=1)
    r = check_real(r, "r", low=0, high=1, high_open=True)
    psi = check_real(psi, "psi")
    check_seed(seed)
    check_memory(48.0 * n, "n", f"{n} wrapped-Cauchy samples")
    rng = np.random.default_rng(seed)
    w = r * np.exp(1j * psi)
    u = np.exp(1j * rng.uniform(0, 2 * np.pi, n))
    e = (u + w) / (1 + np.conj(w) * u)
    pts = np.stack([e.real, e.imag], axis=-1)
    return pts / np.linalg.norm(pts, axis=1, keepdims=True)
