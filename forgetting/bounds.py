"""Theory next to measurement: Lipschitz constants, the Gronwall bound on the deviation between
base and fine-tuned dynamics, the implied lower bound on the time to deviation, and the
spectral-gap picture for concentrated data.

Lipschitz constants (docs/design.md, section 1; the sketch below motivates them, it is not a
full proof). Write a = beta ||Q^T K||_2 and let the field be
X[mu](x) = P_x^perp V m[mu](x), with m the attention average of y (SA: the softmax weights
w(x, y) = e^{beta <x, A y>} / Z(x), a probability density in y; USA: the kernel itself).

* SA, in x: the softmax average m(x) = int y w(x, y) dmu(y) has
  grad_x m = beta Cov_w(y) A (a covariance of unit vectors, norm <= 1), so |grad_x m| <= a;
  the projection P_x^perp adds at most |V m| <= ||V||: L_x <= ||V|| (1 + a).
* SA, in mu (W_1): moving mass from y to y' changes numerator and normaliser; with
  e^{-a} <= e^{beta <x, A y>} <= e^{a} the ratio of extreme weights is e^{2a}, and the
  Lipschitz constant of y -> e^{beta <x, A y>} y is at most (1 + a) e^a, giving (with the
  normaliser) L_mu <= ||V|| e^{2a} (1 + 2a).
* USA: no normaliser; |e^{beta <x, A y>} y| <= e^a and its derivative in x or y is at most
  a e^a, so L_x, L_mu <= ||V|| e^a (1 + a), and a perturbation Delta of V forces the field by
  at most ||Delta|| e^a.
* beta = 0: X = P_x^perp V int y dmu, L_x = L_mu = ||V||, L = 2 ||V||.

Gronwall: two measures driven by X (base) and X + delta X (fine-tuned, |delta X| <= eps) from
the same initial measure satisfy d/dt W_1(mu_t, nu_t) <= L W_1 + eps with L = L_x + L_mu, so

.. math::

    W_1(\\mu_T, \\nu_T) \\le \\varepsilon \\frac{e^{LT} - 1}{L}, \\qquad
    T_{dev}(\\delta) \\ge \\frac{\\log(1 + L\\delta/\\varepsilon)}{L},

with eps = ||Delta V|| (SA) or ||Delta V|| e^a (USA), W_1 with the chordal (Euclidean) ground
cost. The bound holds but is pessimistic (L ~ 185 for beta = 1 and random 3 x 3 matrices).

Spectral gap. For a Dirac initial measure the measure stays a Dirac and
x(t) = e^{tV} x0 / |e^{tV} x0| (SA, any beta; the softmax weight of a single atom is 1). With
V = diag(1, 1 - g) and Delta = eps e2 e2^T on S^1: tan theta(t) = tan theta0 e^{-g t} (base)
and tan theta(t) = tan theta0 e^{(eps - g) t} (fine-tuned): the limit flips from e1 to e2
exactly at eps = g, and T_dev(delta) = log(tan delta / tan theta0) / (eps - g) for eps > g
(angle delta from e1, theta0 < delta).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["lipschitz_constants", "gronwall_bound", "deviation_time_lower_bound",
           "spectral_gap", "dirac_angle", "dirac_time_to_deviation"]


def lipschitz_constants(model) -> dict:
    """{'a', 'L_x', 'L_mu', 'L', 'forcing'}: the constants of the module docstring.

    ``forcing`` multiplies ||Delta V|| to give eps (1 for SA, e^a for USA).
    """
    a = float(model.beta * np.linalg.norm(model.A, 2))
    v = float(np.linalg.norm(model.V, 2))
    if model.beta == 0:
        lx = lmu = v
        forcing = 1.0
    elif model.normalized:
        lx = v * (1 + a)
        lmu = v * math.exp(2 * a) * (1 + 2 * a)
        forcing = 1.0
    else:
        lx = lmu = v * math.exp(a) * (1 + a)
        forcing = math.exp(a)
    return {"a": a, "L_x": lx, "L_mu": lmu, "L": lx + lmu, "forcing": forcing}


def _eps(model, delta_norm):
    if delta_norm < 0 or not np.isfinite(delta_norm):
        raise ValueError(f"delta_norm must be finite and >= 0, got {delta_norm}")
    return lipschitz_constants(model)["forcing"] * float(delta_norm)


def gronwall_bound(model, delta_norm: float, t):
    """eps (e^{L t} - 1) / L: upper bound on W_1 (chordal) between base and fine-tuned runs.

    ``model`` is the base model (its constants bound both fields' Lipschitz behaviour for small
    perturbations; for a rigorous statement use the larger of base and fine-tuned constants,
    see :func:`lipschitz_constants`); ``delta_norm`` = ||Delta V||_2.
    """
    L = lipschitz_constants(model)["L"]
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(over="ignore"):  # e^{L t} beyond float64: the bound is +inf (vacuous)
        return _eps(model, delta_norm) * np.expm1(L * t) / L


def deviation_time_lower_bound(model, delta_norm: float, delta: float) -> float:
    """log(1 + L delta / eps) / L: no deviation delta (in W_1) can happen earlier."""
    L = lipschitz_constants(model)["L"]
    eps = _eps(model, delta_norm)
    if eps == 0:
        return math.inf
    return math.log1p(L * delta / eps) / L


def spectral_gap(V) -> tuple[float, np.ndarray]:
    """(gap, v1): Re(lambda_1) - Re(lambda_2) for the eigenvalues of V sorted by real part,
    and the (real, unit) eigenvector of lambda_1 (where tokens of concentrated data end)."""
    V = np.asarray(V, dtype=np.float64)
    lam, vecs = np.linalg.eig(V)
    order = np.argsort(-lam.real)
    lam, vecs = lam[order], vecs[:, order]
    v1 = np.real(vecs[:, 0])
    return float(lam[0].real - lam[1].real), v1 / np.linalg.norm(v1)


def dirac_angle(t, theta0: float, g: float, eps: float = 0.0):
    """Angle from e1 of the Dirac solution on S^1, V = diag(1, 1 - g), Delta = eps e2 e2^T:
    tan theta(t) = tan theta0 e^{(eps - g) t} (theta0 in (0, pi/2))."""
    t = np.asarray(t, dtype=np.float64)
    return np.arctan(math.tan(theta0) * np.exp((eps - g) * t))


def dirac_time_to_deviation(delta: float, theta0: float, g: float, eps: float) -> float:
    """First time the fine-tuned Dirac is an angle delta from e1 (base stays below theta0):
    log(tan delta / tan theta0) / (eps - g) for eps > g, infinite otherwise."""
    if not 0 < theta0 < delta < math.pi / 2:
        raise ValueError(f"need 0 < theta0 < delta < pi/2, got theta0={theta0}, delta={delta}")
    if eps <= g:
        return math.inf
    return math.log(math.tan(delta) / math.tan(theta0)) / (eps - g)
