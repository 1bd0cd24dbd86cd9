"""Equispaced grids on the circle S^1 and the Fourier tools of the spectral solver.

Nodes theta_j = theta_0 + j h, h = 2 pi / n; points x_j = (cos theta_j, sin theta_j); the unit
tangent is tau_j = (-sin theta_j, cos theta_j), and a tangent field X = v tau has the scalar
speed v = <X, tau>. The trapezoid rule h sum_j f(theta_j) is exact for trigonometric
polynomials of degree < n.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_integer

__all__ = ["grid", "tangents", "spectral_derivative", "fourier_interpolate",
           "fourier_restrict", "check_resolution"]


def grid(n: int, offset: float = 0.0) -> np.ndarray:
    """Angles theta_j = 2 pi (j + offset) / n, j = 0..n-1."""
    return 2 * np.pi * (np.arange(n) + offset) / n


def tangents(theta) -> np.ndarray:
    """Unit tangents tau = (-sin theta, cos theta), shape (n, 2)."""
    return np.stack([-np.sin(theta), np.cos(theta)], axis=-1)


def spectral_derivative(f_hat: np.ndarray, n: int) -> np.ndarray:
    """d/dtheta of the real trigonometric interpolant with rfft coefficients f_hat (length
    n//2 + 1) on n nodes; the Nyquist mode (even n) is dropped."""
    k = np.arange(f_hat.size)
    out = 1j * k * f_hat
    if n % 2 == 0:
        out[-1] = 0.0
    return np.fft.irfft(out, n)


def fourier_interpolate(f: np.ndarray, m: int) -> np.ndarray:
    """Values on m >= n equispaced nodes of the trigonometric interpolant of f (n nodes).

    The Nyquist coefficient of an even n is split evenly between +-n/2 so that the
    interpolant is real and symmetric.
    """
    n = f.size
    f_hat = np.fft.rfft(f)
    g_hat = np.zeros(m // 2 + 1, dtype=complex)
    g_hat[: f_hat.size] = f_hat
    if n % 2 == 0:
        g_hat[n // 2] *= 0.5
    return np.fft.irfft(g_hat, m) * (m / n)


def fourier_restrict(g: np.ndarray, n: int) -> np.ndarray:
    """rfft coefficients (length n//2 + 1, scaled for n nodes) of the modes |k| < n/2 of g
    sampled on m >= n nodes: the L^2 projection used for de-aliasing."""
    m = g.size
    g_hat = np.fft.rfft(g)[: n // 2 + 1] * (n / m)
    if n % 2 == 0:
        g_hat[-1] = 0.0
    return g_hat


def check_resolution(resolution, minimum: int) -> int:
    """The number of nodes or cells n: an even integer >= ``minimum`` (else an error naming
    ``resolution``)."""
    n = check_integer(resolution, "resolution", low=minimum)
    if n % 2:
        raise ValueError(f"resolution must be an even integer >= {minimum}, got {n}")
    return n
