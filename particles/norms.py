"""LayerNorm placement for the N-token system: the velocity of each normalisation scheme.

With u_i = V sum_j softmax_j(beta <Q theta_i, K theta_j>) theta_j the attention output at the
normalised token theta_i = x_i / |x_i| (:func:`continuum.kernels.attention_field` with
``tangent=False``; the USA and causal variants as the model says), a transformer layer with
step h is x <- x + h u (residual stream) with LayerNorm (taken as the projection
y -> y / |y| onto the sphere: RMSNorm without gain) placed as follows, and the h -> 0 limit is:

``"post"`` (Post-LN, the original transformer; Geshkovski et al. 2023):
    theta <- N(theta + h u(theta)), i.e. theta' = P_theta^perp u. Tokens stay on the sphere;
    today's dynamics (the default of ``particles.simulate``, bitwise unchanged).
``"pre"`` (Pre-LN, GPT-2 / LLaMA; docs/design.md section 3 of DESIGN.md):
    x <- x + h u(x / |x|), i.e. x' = u(theta) in R^d, so theta' = P_theta^perp u / r and
    r' = <theta, u> with r = |x|: the angular speed is divided by the growing norm.
``"peri"`` (Peri-LN, Kim et al. 2025, arXiv 2502.02732: a LayerNorm on the input and on the
    output of the sublayer, x <- x + h N(u(N(x)))):
    x' = u / |u|, so theta' = P_theta^perp u / (r |u|) and r' = <theta, u> / |u|.
``"ngpt"`` (nGPT, Loshchilov et al. 2024, arXiv 2410.01131: h <- N(h + alpha (N(h_A) - h))
    with the normalised attention output N(h_A), tokens on the sphere):
    theta' = alpha P_theta^perp u / |u|, with the eigen learning rate alpha = 1 (a constant
    alpha rescales time).

Karagodin, Ge, Polyanskiy and Rigollet (2025, "Normalization in attention dynamics",
arXiv 2510.22026) write all four as one flow on the sphere with a speed factor
(theta' = s_i P_theta^perp u, s_i = 1, 1 / r_i, 1 / (r_i |u_i|), alpha / |u_i|); the limits
above are those factors. Only "post" and "ngpt" keep the tokens on the sphere.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NORMS", "on_sphere", "norm_velocity", "equiangular", "equiangular_rhs"]

NORMS = ("post", "pre", "peri", "ngpt")


def on_sphere(norm: str) -> bool:
    """True for the schemes whose state is theta on the sphere ("post", "ngpt"); the others
    move x in R^d (retract nothing)."""
    return norm in ("post", "ngpt")


def _direction(u: np.ndarray, norm: str) -> np.ndarray:
    size = np.linalg.norm(u, axis=1, keepdims=True)
    if not np.all(size > 0):
        raise ValueError(f"norm={norm!r} normalises the attention output u, which vanished at "
                         f"{int(np.sum(~(size > 0)))} tokens (its direction is undefined)")
    return u / size


def norm_velocity(norm: str, output):
    """The right-hand side y -> y' of the N-token ODE under the LayerNorm placement ``norm``
    (module docstring) for "pre", "peri" and "ngpt", given ``output(p)``, the attention
    output u at the tokens p (N, d) from the cloud p itself (``attention_field(p, p, w,
    model, check=False, tangent=False)``). The state y is x for "pre" and "peri", theta for
    "ngpt"; Runge-Kutta stages are passed as they are, as for "post" (whose right-hand side
    is the tangent field itself, in :func:`particles.integrate.simulate`)."""
    if norm == "ngpt":
        def ngpt(y):
            u = _direction(output(y), norm)
            return u - np.einsum("ij,ij->i", y, u)[:, None] * y
        return ngpt
    if norm not in ("pre", "peri"):
        raise ValueError(f"norm_velocity covers 'pre', 'peri' and 'ngpt', got {norm!r}")

    def pre(y):
        u = output(y / np.linalg.norm(y, axis=1, keepdims=True))
        return u if norm == "pre" else _direction(u, norm)
    return pre


def equiangular(n: int, rho: float) -> np.ndarray:
    """n unit vectors in R^n with <x_i, x_j> = rho for i != j (-1/(n-1) < rho < 1): the rows
    of the Cholesky factor of the Gram matrix (1 - rho) I + rho 1 1^T."""
    return np.linalg.cholesky((1 - rho) * np.eye(n) + rho * np.ones((n, n)))


def equiangular_rhs(t, y, norm: str, normalized: bool, n: int, beta: float):
    """(rho, r)' of n equiangular tokens (<theta_i, theta_j> = rho, |x_i| = r, Q = K = V = I)
    under the LayerNorm placement ``norm`` (derived in docs/design.md, "LayerNorm
    placement"): u_i = a theta_i + b sum_{j != i} theta_j with a = e^beta / Z,
    b = e^{beta rho} / Z (SA, Z = e^beta + (n-1) e^{beta rho}) or Z = n (USA), and

        rho' = 2 b sigma (1 - rho)(1 + (n-1) rho),   r' = (a + (n-1) b rho) / nu,

    sigma = 1 (post), 1/r (pre), 1/(r |u|) (peri), 1/|u| (ngpt); nu = 1 (pre), |u| (peri);
    r' = 0 on the sphere (post, ngpt). The exact reference of the particle code."""
    rho, r = y
    z = np.exp(beta) + (n - 1) * np.exp(beta * rho) if normalized else n
    a, b = np.exp(beta) / z, np.exp(beta * rho) / z
    u = np.sqrt(a * a + 2 * (n - 1) * a * b * rho + b * b * (n - 1) * (1 + (n - 2) * rho))
    sigma = {"post": 1.0, "pre": 1.0 / r, "peri": 1.0 / (r * u), "ngpt": 1.0 / u}[norm]
    radial = {"post": 0.0, "ngpt": 0.0, "pre": a + (n - 1) * b * rho,
              "peri": (a + (n - 1) * b * rho) / u}[norm]
    return [2 * b * sigma * (1 - rho) * (1 + (n - 1) * rho), radial]
