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

Gronwall: two measures driven by X (base) and X' (fine-tuned) from the same initial measure,
with |X'[nu](x) - X[nu](x)| <= eps for every x and nu, satisfy (couple the two flows and use
L_x, L_mu of the base field) d/dt W_1(mu_t, nu_t) <= L W_1 + eps with L = L_x + L_mu, so

.. math::

    W_1(\\mu_T, \\nu_T) \\le \\varepsilon \\frac{e^{LT} - 1}{L}, \\qquad
    T_{dev}(\\delta) \\ge \\frac{\\log(1 + L\\delta/\\varepsilon)}{L},

W_1 with the chordal (Euclidean) ground cost. The bound holds but is pessimistic (L ~ 185
for beta = 1 and random 3 x 3 matrices).

The forcing eps (log eps from :func:`perturbation_log_forcing`) covers a change of V and of
the kernel: write B = beta Q^T K (base) and B' = beta' Q'^T K' (fine-tuned),
dB = ||B' - B||, dV = ||V' - V||. Then X' - X = P_x^perp (V' - V) m' + P_x^perp V (m' - m),
with m, m' the attention averages under B, B' (|P_x^perp| <= 1).

* SA: |m'| <= 1, and along B_s = B + s (B' - B) the softmax average moves by
  d m / ds = Cov_w(y, <x, (B' - B) y>) (w the softmax weights of B_s), whose norm is at most
  sqrt(Var_w y) sqrt(Var_w <x, (B' - B) y>) <= 1 * dB (|y| = 1, |<x, (B' - B) y>| <= dB).
  So eps = dV + ||V|| dB.
* USA: the kernel itself, |e^{<x, B' y>}| <= e^{a'} with a' = max(||B||, ||B'||) (the norm
  is convex along the segment), and d/ds e^{<x, B_s y>} y = <x, (B' - B) y> e^{<x, B_s y>} y
  has norm <= dB e^{a'}. So eps = e^{a'} (dV + ||V|| dB).
* beta = beta' = 0: the kernel is constant, eps = dV.

A LoRA update of V alone gives the familiar eps = ||Delta V|| (SA) or ||Delta V|| e^a (USA);
an update of Q or K gives dB = beta ||Q'^T K' - Q^T K|| > 0 although Delta V = 0.

Everything is computed in log space (log L, log eps): with a = beta ||Q^T K|| beyond ~355 (SA)
e^{2a} exceeds float64; the constants are then reported as inf, the bound on W_1 as inf for
t > 0, and T_dev's lower bound from log(1 + L delta / eps) / L with L delta / eps formed from
the logs (0 when L itself is inf): never an OverflowError or a NaN after the runs are done.

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

from continuum import Attention, Layers, MultiHead
from continuum.checks import as_real_array, check_array, check_real
from continuum.direct import check_model
from continuum.family import check_family, heads_of

__all__ = ["lipschitz_constants", "perturbation_log_forcing", "gronwall_bound", "paired_heads",
           "deviation_time_lower_bound",
           "spectral_gap", "dirac_angle", "dirac_time_to_deviation"]


def _exp(x: float) -> float:
    """e^x, inf beyond the float64 range (instead of OverflowError)."""
    return math.exp(x) if x < 709.0 else math.inf


def lipschitz_constants(model) -> dict:
    """{'a', 'L_x', 'L_mu', 'L', 'forcing', 'log_L', 'log_forcing'}: the constants of the
    module docstring, computed in log space (``L`` and ``forcing`` are inf where they exceed
    float64; their logs stay finite).

    ``forcing`` multiplies ||Delta V|| to give eps for a change of V alone (1 for SA, e^a for
    USA); :func:`perturbation_log_forcing` gives eps for any change.

    A MultiHead: L_x, L_mu and L are the sums over heads weighted by w_h (the field is
    sum_h w_h X_h, and Lipschitz constants add), ``a`` and ``forcing`` the largest w_h-weighted
    head's (a change of one head's V by ||Delta|| forces the field by w_h forcing_h ||Delta||).
    A Layers: every constant the largest over its layers (a bound that holds on every layer
    holds on the run).
    """
    if not isinstance(model, Attention):
        return _family_constants(check_family(model))
    check_model(model)
    a = float(model.beta * np.linalg.norm(model.A, 2))
    v = float(np.linalg.norm(model.V, 2))
    log_v = math.log(v) if v > 0 else -math.inf
    if model.beta == 0:
        lx = lmu = v
        log_l, log_forcing = log_v + math.log(2), 0.0
    elif model.normalized:
        lx = v * (1 + a)
        log_lmu = log_v + 2 * a + math.log1p(2 * a)  # ||V|| e^{2a} (1 + 2a)
        lmu = _exp(log_lmu)
        log_l = float(np.logaddexp(log_v + math.log1p(a), log_lmu))
        log_forcing = 0.0
    else:
        log_lx = log_v + a + math.log1p(a)  # ||V|| e^a (1 + a)
        lx = lmu = _exp(log_lx)
        log_l, log_forcing = log_lx + math.log(2), a
    return {"a": a, "L_x": lx, "L_mu": lmu, "L": _exp(log_l), "forcing": _exp(log_forcing),
            "log_L": log_l, "log_forcing": log_forcing}


def _family_constants(model) -> dict:
    """:func:`lipschitz_constants` of a MultiHead or a Layers (its docstring)."""
    if isinstance(model, Layers):
        parts = [lipschitz_constants(m) for m in model.models]
        return {key: max(c[key] for c in parts) for key in parts[0]}
    parts = [(math.log(w), lipschitz_constants(head)) for w, head in heads_of(model)]
    log_l = float(np.logaddexp.reduce([lw + c["log_L"] for lw, c in parts]))
    log_forcing = max(lw + c["log_forcing"] for lw, c in parts)
    return {"a": max(c["a"] for _, c in parts),
            "L_x": sum(math.exp(lw) * c["L_x"] for lw, c in parts),
            "L_mu": sum(math.exp(lw) * c["L_mu"] for lw, c in parts),
            "L": _exp(log_l), "forcing": _exp(log_forcing), "log_L": log_l,
            "log_forcing": log_forcing}


def paired_heads(model, tuned) -> list:
    """[(layer, w_h, head, tuned head), ...] over the layers and heads of a base model and
    its fine-tuned copy of the same structure (same kind, number of layers, layer time,
    heads and combine; else ValueError naming ``tuned``)."""
    check_family(model)
    check_family(tuned, "tuned")
    if type(tuned) is not type(model):
        raise ValueError(f"tuned must be a {type(model).__name__} like the base model, got "
                         f"{type(tuned).__name__}")
    if isinstance(model, Layers):
        if len(tuned.models) != len(model.models) or tuned.layer_time != model.layer_time:
            raise ValueError(f"tuned must have the base model's {len(model.models)} layers of "
                             f"time {model.layer_time:g}, got {len(tuned.models)} of "
                             f"{tuned.layer_time:g}")
        return [(k, w, h, h2) for k, (m, m2) in enumerate(zip(model.models, tuned.models))
                for _, w, h, h2 in paired_heads(m, m2)]
    heads, tuned_heads = heads_of(model), heads_of(tuned)
    if [w for w, _ in heads] != [w for w, _ in tuned_heads]:
        raise ValueError(f"tuned must have the base model's {len(heads)} heads and combine "
                         f"rule, got {len(tuned_heads)} heads")
    return [(0, w, h, h2) for (w, h), (_, h2) in zip(heads, tuned_heads)]


def perturbation_log_forcing(model, tuned) -> float:
    """log eps, eps = sup_{x, nu} |X_tuned[nu](x) - X_base[nu](x)| bounded as in the module
    docstring from dV = ||V' - V|| and dB = ||beta' Q'^T K' - beta Q^T K|| (any change of V,
    Q, K or beta): SA eps = dV + ||V|| dB, USA eps = e^{a'} (dV + ||V|| dB),
    a' = max(||B||, ||B'||). -inf when the models are the same. A MultiHead: log sum_h w_h
    eps_h over its heads (:func:`paired_heads`); a Layers: the largest over its layers."""
    if not isinstance(model, Attention):
        pairs = paired_heads(model, tuned)
        per_layer = {}
        for k, w, head, tuned_head in pairs:
            per_layer.setdefault(k, []).append(math.log(w) + perturbation_log_forcing(
                head, tuned_head))
        return max(float(np.logaddexp.reduce(v)) for v in per_layer.values())
    check_model(model)
    check_model(tuned, "tuned")
    if tuned.d != model.d or tuned.normalized != model.normalized:
        raise ValueError(f"tuned must have the base model's d={model.d} and normalisation "
                         f"({model.name}), got d={tuned.d}, {tuned.name}")
    B, B2 = model.beta * model.A, tuned.beta * tuned.A
    dv = float(np.linalg.norm(tuned.V - model.V, 2))
    db = float(np.linalg.norm(B2 - B, 2))
    total = dv + float(np.linalg.norm(model.V, 2)) * db
    if total == 0:
        return -math.inf
    scale = 0.0 if model.normalized else max(float(np.linalg.norm(B, 2)),
                                             float(np.linalg.norm(B2, 2)))
    return scale + math.log(total)


def _log_eps(model, delta_norm) -> float:
    """log eps for ``delta_norm``: ||Delta V|| (a number) or the fine-tuned Attention."""
    if isinstance(delta_norm, (Attention, MultiHead, Layers)):  # the fine-tuned model
        return perturbation_log_forcing(model, delta_norm)
    eps = check_real(delta_norm, "delta_norm (||Delta V||, or the fine-tuned Attention)", low=0)
    return lipschitz_constants(model)["log_forcing"] + math.log(eps) if eps > 0 else -math.inf


def _check_times(t, name: str = "t") -> np.ndarray:
    """``t`` (a number or an array) as float64 times: finite and >= 0."""
    t = as_real_array(t, name)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"{name} must hold finite times >= 0")
    return t


def gronwall_bound(model, delta_norm, t):
    """eps (e^{L t} - 1) / L: upper bound on W_1 (chordal) between base and fine-tuned runs.

    ``model`` is the base model (its L_x, L_mu enter the coupling argument); ``delta_norm`` is
    ||Delta V||_2 (a change of V alone) or the fine-tuned Attention itself, whose changes of
    V, Q, K (and beta) all enter eps (:func:`perturbation_log_forcing`). inf where the bound
    exceeds float64 (vacuous), never NaN; eps t for L = 0.
    """
    c = lipschitz_constants(model)
    log_eps = _log_eps(model, delta_norm)
    t = _check_times(t)
    if log_eps == -math.inf:
        return np.zeros_like(t)
    if c["L"] == 0:
        return math.exp(log_eps) * t
    # exp(log eps - log L + log(e^{Lt} - 1)): e^{-log L} may underflow while e^{Lt} overflows
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # masked by t > 0
        x = c["L"] * t
        log_grow = np.where(x > 30, x + np.log1p(-np.exp(-np.minimum(x, 745.0))),
                            np.log(np.expm1(np.minimum(x, 30.0))))
        return np.where(t > 0, np.exp(log_eps - c["log_L"] + log_grow), 0.0)


def deviation_time_lower_bound(model, delta_norm, delta: float) -> float:
    """log(1 + L delta / eps) / L: no deviation delta (in W_1) can happen earlier.

    ``delta_norm`` as in :func:`gronwall_bound` (||Delta V|| or the fine-tuned Attention).
    L delta / eps is formed from the logs, so a huge L or eps gives a number, not NaN."""
    delta = check_real(delta, "delta", low=0, low_open=True)
    c = lipschitz_constants(model)
    log_eps = _log_eps(model, delta_norm)
    if log_eps == -math.inf:
        return math.inf
    if c["L"] == 0:
        return delta / math.exp(log_eps)
    if c["L"] == math.inf:
        return 0.0  # log(1 + L delta / eps) / L -> 0 as L -> inf
    ratio = _exp(c["log_L"] + math.log(delta) - log_eps)
    return math.log1p(ratio) / c["L"] if ratio < math.inf else \
        (c["log_L"] + math.log(delta) - log_eps) / c["L"]


def spectral_gap(V) -> tuple[float, np.ndarray]:
    """(gap, v1): Re(lambda_1) - Re(lambda_2) for the eigenvalues of V sorted by real part,
    and the (real, unit) eigenvector of lambda_1 (where tokens of concentrated data end)."""
    V = check_array(V, "V", ndim=2)
    if V.shape[0] != V.shape[1] or V.shape[0] < 2:
        raise ValueError(f"V must be a square matrix of size >= 2, got shape {V.shape}")
    lam, vecs = np.linalg.eig(V)
    order = np.argsort(-lam.real)
    lam, vecs = lam[order], vecs[:, order]
    v1 = np.real(vecs[:, 0])
    return float(lam[0].real - lam[1].real), v1 / np.linalg.norm(v1)


def dirac_angle(t, theta0: float, g: float, eps: float = 0.0):
    """Angle from e1 of the Dirac solution on S^1, V = diag(1, 1 - g), Delta = eps e2 e2^T:
    tan theta(t) = tan theta0 e^{(eps - g) t} (theta0 in (0, pi/2))."""
    t = _check_times(t)
    theta0 = check_real(theta0, "theta0", low=0, high=math.pi / 2, low_open=True,
                        high_open=True)
    g, eps = check_real(g, "g"), check_real(eps, "eps")
    return np.arctan(math.tan(theta0) * np.exp((eps - g) * t))


def dirac_time_to_deviation(delta: float, theta0: float, g: float, eps: float) -> float:
    """First time the fine-tuned Dirac is an angle delta from e1 (base stays below theta0):
    log(tan delta / tan theta0) / (eps - g) for eps > g, infinite otherwise."""
    delta, theta0 = check_real(delta, "delta"), check_real(theta0, "theta0")
    g, eps = check_real(g, "g"), check_real(eps, "eps")
    if not 0 < theta0 < delta < math.pi / 2:
        raise ValueError(f"need 0 < theta0 < delta < pi/2, got theta0={theta0}, delta={delta}")
    if eps <= g:
        return math.inf
    return math.log(math.tan(delta) / math.tan(theta0)) / (eps - g)
