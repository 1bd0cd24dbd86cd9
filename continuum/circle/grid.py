"""Geometry and Fourier tools on the circle S^1 (equispaced grids).

Nodes theta_j = theta_0 + j h, h = 2 pi / n; points x_j = (cos theta_j, sin theta_j); the unit
tangent is tau_j = (-sin theta_j, cos theta_j), and a tangent field X = v tau has the scalar
speed v = <X, tau>. The trapezoid rule h sum_j f(theta_j) is exact for trigonometric
polynomials of degree < n.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .geometry import angles_to_circle

__all__ = ["grid", "tangents", "spectral_derivative", "fourier_interpolate",
           "fourier_restrict", "circle_velocity", "choose_path", "is_rotation_kernel"]


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


def is_rotation_kernel(A: np.ndarray, tol: float = 1e-14):
    """(c, alpha) if A = c R(alpha) (a multiple of a rotation), else None."""
    a, b = A[0, 0], A[1, 0]
    scale = max(np.abs(A).max(), 1e-300)
    if abs(A[1, 1] - a) <= tol * scale and abs(A[0, 1] + b) <= tol * scale:
        return float(np.hypot(a, b)), float(np.arctan2(b, a))
    return None


#: the FFT path is used automatically only while the kernel's dynamic range e^{2 beta c}
#: leaves at least 1e-8 relative accuracy after round-off (beta c <= 9)
FFT_MAX_BETA_C = 9.0


@lru_cache(maxsize=32)
def _kernel_fft(n: int, beta_c: float, alpha: float, shift: float) -> np.ndarray:
    """FFT of K_l = e^{beta c (cos(2 pi l / n + shift - alpha) - 1)}, the circular-convolution
    kernel between equispaced sources and targets shifted by ``shift`` (cached: it depends on
    the model and the grid only, not on the density)."""
    lag = 2 * np.pi * np.arange(n) / n + shift  # target i minus source j = lag_{i-j}
    out = np.fft.fft(np.exp(beta_c * (np.cos(lag - alpha) - 1.0)))
    out.setflags(write=False)
    return out


def choose_path(model, path: str = "auto") -> str:
    """Resolve ``"auto"`` to "fft" or "kernel"; check that "fft" is possible."""
    if path not in ("auto", "fft", "kernel"):
        raise ValueError(f"field path must be 'auto', 'fft' or 'kernel', got {path!r}")
    rot = is_rotation_kernel(model.A)
    if path == "auto":
        return "fft" if rot is not None and model.beta * rot[0] <= FFT_MAX_BETA_C else "kernel"
    if path == "fft" and rot is None:
        raise ValueError("the FFT path needs Q^T K = c R(alpha) (a multiple of a rotation)")
    return path


def circle_velocity(model, theta: np.ndarray, masses: np.ndarray, path: str = "auto",
                    target_shift: float = 0.0):
    """Tangential speed v_i = <X[mu](x(theta_i + s)), tau(theta_i + s)> at the equispaced
    nodes theta shifted by s = ``target_shift`` (0 for nodes, h/2 for cell interfaces), for the
    measure mu = sum_j m_j delta_{x(theta_j)} (masses m_j >= 0).

    ``path="kernel"``: the Numba kernel (any Q, K, V), O(n^2). ``path="fft"``: when
    A = Q^T K = c R(alpha), <x_i, A y_j> = c cos(theta_i + s - theta_j - alpha), so numerator
    and denominator are circular convolutions of m_j y_j and m_j with
    K_l = e^{beta c (cos(theta_l - theta_0 + s - alpha) - 1)}, computed with FFTs in
    O(n log n) (the factor e^{beta c} cancels for SA and is applied at the end for USA).
    ``"auto"``: FFT when A is a rotation multiple and beta c <= FFT_MAX_BETA_C.
    Returns (v, path_used).
    """
    from .kernels import _field

    path = choose_path(model, path)
    sources = angles_to_circle(theta)
    targets = angles_to_circle(theta + target_shift)
    tau = tangents(theta + target_shift)
    if path == "kernel":
        total = masses.sum()
        field = _field(targets, sources, masses / total, model)
        if not model.normalized:
            field = field * total
        return np.einsum("ij,ij->i", field, tau), path
    c, alpha = is_rotation_kernel(model.A)
    kern_hat = _kernel_fft(theta.size, float(model.beta * c), alpha, float(target_shift))

    def conv(f):
        return np.fft.ifft(kern_hat * np.fft.fft(f)).real

    num = np.stack([conv(masses * sources[:, 0]), conv(masses * sources[:, 1])], axis=-1)
    num = num @ model.V.T
    if model.normalized:
        num /= conv(masses)[:, None]
    else:
        num *= np.exp(model.beta * c)
        if not np.all(np.isfinite(num)):
            raise FloatingPointError(f"attention field overflowed (USA, beta={model.beta:g})")
    return np.einsum("ij,ij->i", num, tau), path
