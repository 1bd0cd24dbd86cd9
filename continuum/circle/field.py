"""The attention field on S^1 when Q^T K = c R(alpha): FFT convolution on grids, Fourier
expansion for clouds, and the choice between them and the direct sum.

Grids (the solvers' path, :func:`circle_velocity`): with equispaced sources theta_j and targets
theta_i + s, <x_i, A y_j> = c cos(theta_i + s - theta_j - alpha), so numerator and normaliser
are circular convolutions, O(n log n) by FFT.

Clouds (:func:`fourier_field`, any points on S^1): with x = e^{i theta}, y_j = e^{i phi_j},

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
direct Numba sum stays the reference both paths are tested against. Both are used
automatically only while beta c <= FFT_MAX_BETA_C: the kernel's dynamic range e^{2 beta c} then
keeps round-off relative errors below 1e-8 even where D is small. This module owns the S^1
fast-path choice: :func:`choose_path` for grids, :func:`fourier_preferred` for clouds.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import ive

from ..direct import direct_field
from ..family import heads_of
from ..model import Attention
from ..geometry import angles_to_circle, tangent_project
from .grid import tangents

__all__ = ["fourier_field", "fourier_applicable", "fourier_preferred", "truncation",
           "circle_velocity", "choose_path", "head_paths", "is_rotation_kernel", "kernel_fft", "FFT_MAX_BETA_C",
           "FOURIER_MIN_PAIRS"]

#: the FFT and Fourier paths are used automatically only while the kernel's dynamic range
#: e^{2 beta c} leaves at least 1e-8 relative accuracy after round-off (beta c <= 9)
FFT_MAX_BETA_C = 9.0
#: from this many pairs on, "auto" evaluates clouds on S^1 by the Fourier expansion
FOURIER_MIN_PAIRS = 1 << 22


def is_rotation_kernel(A: np.ndarray, tol: float = 1e-14):
    """(c, alpha) if A = c R(alpha) (a multiple of a rotation), else None."""
    a, b = A[0, 0], A[1, 0]
    scale = max(np.abs(A).max(), 1e-300)
    if abs(A[1, 1] - a) <= tol * scale and abs(A[0, 1] + b) <= tol * scale:
        return float(np.hypot(a, b)), float(np.arctan2(b, a))
    return None


@lru_cache(maxsize=32)
def kernel_fft(n: int, beta_c: float, alpha: float, shift: float) -> np.ndarray:
    """FFT of K_l = e^{beta c (cos(2 pi l / n + shift - alpha) - 1)}, the circular-convolution
    kernel between equispaced sources and targets shifted by ``shift`` (cached: it depends on
    the model and the grid only, not on the density)."""
    lag = 2 * np.pi * np.arange(n) / n + shift  # target i minus source j = lag_{i-j}
    out = np.fft.fft(np.exp(beta_c * (np.cos(lag - alpha) - 1.0)))
    out.setflags(write=False)
    return out


def choose_path(model, path: str = "auto") -> str:
    """Resolve ``"auto"`` to "fft" or "kernel"; check that "fft" is possible. A MultiHead:
    one path per head, comma-joined ("fft,kernel")."""
    if not isinstance(model, Attention):  # several heads: each head its own path
        return ",".join(head_paths(model, path))
    if path not in ("auto", "fft", "kernel"):
        raise ValueError(f"field path must be 'auto', 'fft' or 'kernel', got {path!r}")
    rot = is_rotation_kernel(model.A)
    if path == "auto":
        return "fft" if rot is not None and model.beta * rot[0] <= FFT_MAX_BETA_C else "kernel"
    if path == "fft" and rot is None:
        raise ValueError("the FFT path needs Q^T K = c R(alpha) (a multiple of a rotation)")
    return path


def head_paths(model, path: str = "auto") -> list:
    """The path of each head of ``model`` (``continuum.family.heads_of``) for ``path``: one
    path for all heads, or a comma-joined path per head (what :func:`choose_path` returns)."""
    heads = heads_of(model)
    parts = path.split(",") if isinstance(path, str) else [path]
    if len(parts) == 1:
        parts = parts * len(heads)
    if len(parts) != len(heads):
        raise ValueError(f"field path {path!r} names {len(parts)} heads, the model has "
                         f"{len(heads)}")
    return [choose_path(head, p) for (_, head), p in zip(heads, parts)]


def circle_velocity(model, theta: np.ndarray, masses: np.ndarray, path: str = "auto",
                    target_shift: float = 0.0):
    """Tangential speed v_i = <X[mu](x(theta_i + s)), tau(theta_i + s)> at the equispaced
    nodes theta shifted by s = ``target_shift`` (0 for nodes, h/2 for cell interfaces), for the
    measure mu = sum_j m_j delta_{x(theta_j)} (masses m_j >= 0).

    ``path="kernel"``: the field of the cloud of nodes (any Q, K, V): the direct sum, O(n^2),
    or from n^2 >= FOURIER_MIN_PAIRS on, when it applies, the Fourier expansion, O(n L).
    ``path="fft"``: when A = Q^T K = c R(alpha), <x_i, A y_j> = c cos(theta_i + s - theta_j
    - alpha), so numerator and denominator are circular convolutions of m_j y_j and m_j with
    K_l = e^{beta c (cos(theta_l - theta_0 + s - alpha) - 1)}, computed with FFTs in
    O(n log n) (the factor e^{beta c} cancels for SA and is applied at the end for USA).
    ``"auto"``: FFT when A is a rotation multiple and beta c <= FFT_MAX_BETA_C.
    A MultiHead: the sum of its heads' speeds, each by its own path (:func:`head_paths`).
    Returns (v, path_used).
    """
    if not isinstance(model, Attention):  # several heads: sum_h w_h v_h
        paths = head_paths(model, path)
        v = sum(w * circle_velocity(head, theta, masses, p, target_shift)[0]
                for (w, head), p in zip(heads_of(model), paths))
        return v, ",".join(paths)
    path = choose_path(model, path)
    n = theta.size
    sources = angles_to_circle(theta)
    targets = angles_to_circle(theta + target_shift)
    tau = tangents(theta + target_shift)
    if path == "kernel":
        total = masses.sum()
        cloud = fourier_field if fourier_preferred(model, n, n) else direct_field
        field = cloud(targets, sources, masses / total, model)
        if not model.normalized:
            field = field * total
        return np.einsum("ij,ij->i", field, tau), path
    c, alpha = is_rotation_kernel(model.A)
    kern_hat = kernel_fft(theta.size, float(model.beta * c), alpha, float(target_shift))

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


def fourier_preferred(model, n_targets: int, n_sources: int) -> bool:
    """The "auto" choice for clouds: Fourier expansion when it applies and the cloud has at
    least FOURIER_MIN_PAIRS target-source pairs (below that the direct sum is as fast)."""
    return n_targets * n_sources >= FOURIER_MIN_PAIRS and fourier_applicable(model)


def _powers(z, L):
    """z^m for m = 0..L, shape (len(z), L + 1), by repeated multiplication (|z| = 1)."""
    out = np.empty((z.size, L + 1), dtype=complex)
    out[:, 0] = 1.0
    for m in range(1, L + 1):
        out[:, m] = out[:, m - 1] * z
    return out


def fourier_field(targets, sources, weights, model) -> np.ndarray:
    """Attention field at targets (M, 2) of the cloud (sources (N, 2), weights (N,)); same
    result as the direct sum (to round-off), in O((M + N) L)."""
    rot = is_rotation_kernel(model.A) if model.d == 2 else None
    if rot is None:
        raise ValueError("the Fourier expansion of the S^1 field needs d = 2 and "
                         "Q^T K = c R(alpha) (a multiple of a rotation)")
    c, alpha = rot
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
    return tangent_project(targets, vec)
