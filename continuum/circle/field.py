"""Fast attention field on S^1 when Q^T K = c R(alpha): a Fourier expansion of the kernel.

With x = e^{i theta}, y_j = e^{i phi_j} and <x, A y_j> = c cos(theta - phi_j - alpha),

.. math::

    e^{\\beta c (\\cos(\\theta - \\phi - \\alpha) - 1)}
      = \\sum_{m \\in Z} \\tilde I_m(\\beta c)\\, e^{i m (\\theta - \\phi - \\alpha)},
    \\qquad \\tilde I_m = e^{-\\beta c} I_m \\text{ (scipy.special.ive)},

so with the moments mu_p = sum_j w_j e^{-i p phi_j}, the numerator (as a complex number) and
the denominator are

.. math::

    N(\\theta) = \\sum_m \\tilde I_m e^{i m(\\theta-\\alpha)} \\mu_{m-1}, \\qquad
    D(\\theta) = \\sum_m \\tilde I_m e^{i m(\\theta-\\alpha)} \\mu_m.

Truncating at |m| <= L where I~_m / I~_0 < 1e-17 costs O((M + N) L) instead of O(M N). The
direct Numba kernel stays the reference this path is tested against; ``kernels._field`` uses
this path for large clouds when ``beta c <= FFT_MAX_BETA_C`` (so that the kernel's dynamic
range keeps round-off relative errors below 1e-8 even where D is small).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ive

from .circle import FFT_MAX_BETA_C, is_rotation_kernel

__all__ = ["fourier_field", "fourier_applicable", "truncation"]


def truncation(beta_c: float, tol: float = 1e-17) -> int:
    """Smallest L with ive(m, beta c) <= tol * ive(0, beta c) for all m > L."""
    L = 1
    i0 = ive(0, beta_c)
    while ive(L + 1, beta_c) > tol * i0:
        L += 1
    return L


def fourier_applicable(model) -> bool:
    """True for d = 2, Q^T K = c R(alpha) and beta c <= FFT_MAX_BETA_C."""
    if model.d != 2:
        return False
    rot = is_rotation_kernel(model.A)
    return rot is not None and model.beta * rot[0] <= FFT_MAX_BETA_C


def _powers(z, L):
    """z^m for m = 0..L, shape (len(z), L + 1), by repeated multiplication (|z| = 1)."""
    out = np.empty((z.size, L + 1), dtype=complex)
    out[:, 0] = 1.0
    for m in range(1, L + 1):
        out[:, m] = out[:, m - 1] * z
    return out


def fourier_field(targets, sources, weights, model) -> np.ndarray:
    """Attention field at targets (M, 2) of the cloud (sources (N, 2), weights (N,)); same
    result as ``kernels.attention_field`` (to round-off), in O((M + N) L)."""
    c, alpha = is_rotation_kernel(model.A)
    beta_c = model.beta * c
    L = truncation(beta_c)
    m = np.arange(-L, L + 1)
    coef = ive(m, beta_c) * np.exp(-1j * m * alpha)  # I~_m e^{-i m alpha}
    z_src = sources[:, 0] + 1j * sources[:, 1]
    z_src = z_src / np.abs(z_src)  # e^{i phi_j} (sources may be off the sphere by rounding)
    # moments mu_p = sum_j w_j conj(z_j)^p for p = 0..L+1; mu_{-p} = conj(mu_p)
    pos = _powers(np.conj(z_src), L + 1).T @ weights
    moments = np.concatenate([np.conj(pos[:0:-1]), pos])  # p = -L-1 .. L+1
    mu_m = moments[1:-1]  # p = m, m = -L..L
    mu_m1 = moments[:-2]  # p = m - 1
    z_tgt = targets[:, 0] + 1j * targets[:, 1]
    z_tgt = z_tgt / np.abs(z_tgt)
    up = _powers(z_tgt, L)  # e^{i m theta}, m = 0..L
    phase = np.concatenate([np.conj(up[:, :0:-1]), up], axis=1)  # m = -L..L
    num = phase @ (coef * mu_m1)
    den = (phase @ (coef * mu_m)).real
    vec = np.stack([num.real, num.imag], axis=-1) @ model.V.T
    if model.normalized:
        vec /= den[:, None]
    else:
        vec *= math.exp(beta_c)
        if not np.all(np.isfinite(vec)):
            raise FloatingPointError(f"attention field overflowed (USA, beta={model.beta:g})")
    return vec - np.einsum("ij,ij->i", targets, vec)[:, None] * targets
