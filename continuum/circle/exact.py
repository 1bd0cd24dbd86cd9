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

__all__ = ["kuramoto_order_parameter", "wrapped_cauchy_density", "sample_wrapped_cauchy"]


def kuramoto_order_parameter(t, r0: float):
    """r(t) of the wrapped-Cauchy solution (SA, beta = 0, V = I on S^1)."""
    if not 0 <= r0 < 1:
        raise ValueError(f"r0 must be in [0, 1), got {r0}")
    e = np.exp(np.asarray(t, dtype=np.float64))
    return np.sqrt(r0**2 * e / (1 - r0**2 + r0**2 * e))


def wrapped_cauchy_density(points, r: float, psi: float = 0.0):
    """Wrapped-Cauchy density (w.r.t. arc length) at points (M, 2) of S^1."""
    if not 0 <= r < 1:
        raise ValueError(f"r must be in [0, 1), got {r}")
    points = np.asarray(points, dtype=np.float64)
    c = points[:, 0] * np.cos(psi) + points[:, 1] * np.sin(psi)  # cos(theta - psi)
    return (1 - r**2) / (2 * np.pi * (1 - 2 * r * c + r**2))


def sample_wrapped_cauchy(n: int, r: float, psi: float = 0.0, seed=0):
    """n iid points of the wrapped-Cauchy law with mean resultant w = r e^{i psi}.

    e^{i theta} = (e^{iz} + w) / (1 + conj(w) e^{iz}) with z uniform on [0, 2 pi).
    """
    rng = np.random.default_rng(seed)
    w = r * np.exp(1j * psi)
    u = np.exp(1j * rng.uniform(0, 2 * np.pi, n))
    e = (u + w) / (1 + np.conj(w) * u)
    pts = np.stack([e.real, e.imag], axis=-1)
    return pts / np.linalg.norm(pts, axis=1, keepdims=True)
