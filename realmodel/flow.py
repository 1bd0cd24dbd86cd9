"""The mean-field flow of one real attention head (issue 12, item 4).

Which space. The flow runs in the residual stream R^H (H = 384 for MiniLM), on the sphere
S^{H-1} of the directions of the hidden states: that is where LayerNorm puts the tokens (up to
its affine part) and where a head reads and writes, x -> x + W_O^h softmax(...) W_V^h x. In the
head's own d_h = 32 dimensions neither the projection P_x^perp nor the normalisation has a
meaning (nothing normalises the values), so the head's matrices are lifted to the residual
space:

.. math::

    A_h = (W_Q^h)^T W_K^h \\in R^{H \\times H}, \\qquad
    V_h = W_O^h W_V^h \\in R^{H \\times H} \\quad (\\text{both of rank } d_h),

and the model is ``Attention(beta, d=H, Q=I, K=A_h, V=V_h)`` (<Q x, K y> = <x, A_h y> =
<W_Q^h x, W_K^h y>, the head's logit up to 1 / sqrt(d_h) and the biases). Biases,
the other heads, the MLP and LayerNorm's affine part are left out: this is the flow of one
head's bilinear forms, the object the theory speaks about. The temperature: the real logits
are <q_i, k_j> / sqrt(d_h) with |x| ~ 11.6 (MiniLM's hidden states), i.e. beta ~ 24 on the unit
sphere, where beta ||A_h|| ~ 100 makes the flow stiff (field scale ~ 600); the default
beta = 1 keeps beta ||A_h|| ~ 4, the regime of the rest of the package. The spectral claims
below do not depend on beta once the tokens have clustered.

The spectrum. V_h = U W with U = W_O^h (H x d_h) and W = W_V^h (d_h x H). Its nonzero
eigenvalues are those of M_h = W U = W_V^h W_O^h (:func:`realmodel.spectra.ov_spectrum`); if
M s = lambda s and t^T M = lambda t^T, then r = U s and l^T = t^T W are right and left
eigenvectors of V_h, with l^T r = lambda t^T s. The spectral projector of a mode (a real
eigenvalue, or a complex-conjugate pair taken together) is the real matrix

.. math::

    P = \\sum_{\\lambda \\in \\text{mode}} \\frac{r_\\lambda l_\\lambda^T}{l_\\lambda^T r_\\lambda},

and V_h + eps P_2 has the same eigenvectors with the competing mode's eigenvalues moved by eps:
the spectral perturbation of the theory. With the gap g = Re lambda_1 - Re lambda_2 (modes by
real part), eps = kappa g crosses at kappa = 1.

What the theory says. A Dirac token moves by x' = P_x^perp V x, whose solution is
e^{tV} x_0 / |e^{tV} x_0|; for a real mode, d/dt log |<l, x>| = lambda - <x, V x>, so

.. math::

    \\frac{d}{dt} \\log \\frac{|\\Pi_2 x|}{|\\Pi_1 x|} = \\lambda_2 + \\varepsilon - \\lambda_1
    = \\varepsilon - g \\qquad (\\Pi_k = P_k, \\text{ real modes}),

exactly, whatever the rest of the spectrum. Once a cloud has collapsed into clusters each moves
like a Dirac, so the late-time slope of the token mean of s_i = log |Pi_2 x_i| / |Pi_1 x_i| is
eps - g (:func:`late_slope`): the fine-tuned tokens leave the top mode for the competing one if
and only if eps > g, and a cloud that starts collapsed at s_0 reaches a fixed deviation after
T_dev = (s_* - s_0) / (eps - g): T_dev (eps - g) is a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from continuum import Attention
from forgetting.runs import time_to_deviation
from particles import simulate

from .numpy_model import forward
from .spectra import mode_indices

__all__ = ["LowRankSpectrum", "low_rank_spectrum", "head_model", "head_flow", "reduce",
           "layer_tokens",
           "mode_ratio", "late_slope", "flow", "collapsed", "switch_bracket", "deviation_times",
           "deviation_time", "selected_heads", "measure_head", "FLOW_RTOL", "FLOW_ATOL"]

#: tolerances of the DOP853 runs (adaptive: the collapse is fast, the drift afterwards slow)
FLOW_RTOL, FLOW_ATOL = 1e-8, 1e-10


@dataclass(frozen=True)
class LowRankSpectrum:
    """Nonzero spectrum of V = U W (H x H, rank r) grouped into modes.

    Attributes
    ----------
    eigenvalues : ndarray (r,) complex
        By real part descending, then imaginary part descending (a pair: + first).
    right, left : ndarray (H, r) complex
        V right[:, k] = lambda_k right[:, k], left[:, k]^T V = lambda_k left[:, k]^T and
        left^T right = I (biorthonormal).
    modes : tuple of tuples of int
        Indices of each mode: a real eigenvalue, or a conjugate pair.
    """

    eigenvalues: np.ndarray
    right: np.ndarray
    left: np.ndarray
    modes: tuple

    def real_part(self, k: int) -> float:
        """Re lambda of mode k."""
        return float(self.eigenvalues[self.modes[k][0]].real)

    def gap(self) -> float:
        """g = Re(mode 0) - Re(mode 1): a conjugate pair counts once."""
        if len(self.modes) < 2:
            raise ValueError("the gap needs at least two modes")
        return self.real_part(0) - self.real_part(1)

    def is_real(self, k: int) -> bool:
        return len(self.modes[k]) == 1

    def projector(self, k: int) -> np.ndarray:
        """Real spectral projector (H x H) of mode k: the sum of r l^T over its eigenvalues."""
        idx = list(self.modes[k])
        return np.ascontiguousarray((self.right[:, idx] @ self.left[:, idx].T).real)


def low_rank_spectrum(U, W) -> LowRankSpectrum:
    """The nonzero spectrum of V = U W through the r x r matrix M = W U (module docstring),
    its modes grouped as :func:`realmodel.spectra.mode_indices` groups them.

    Parameters
    ----------
    U : array_like (H, r)
    W : array_like (r, H)
    """
    U = np.asarray(U, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    if U.ndim != 2 or W.ndim != 2 or U.shape[1] != W.shape[0] or U.shape[0] != W.shape[1]:
        raise ValueError(f"U (H, r) and W (r, H) must fit, got U {U.shape} and W {W.shape}")
    if not (np.all(np.isfinite(U)) and np.all(np.isfinite(W))):
        raise ValueError("U and W must have finite entries")
    lam, vl, vr = scipy.linalg.eig(W @ U, left=True, right=True)
    scale = max(1.0, float(np.max(np.abs(lam))))
    if np.min(np.abs(lam)) <= 1e-12 * scale:
        raise ValueError("W U is singular: V = U W has fewer nonzero eigenvalues than its rank r")
    groups = mode_indices(lam)  # by real part descending, a pair's + member first
    order = np.concatenate(groups)
    lam, vl, vr = lam[order], vl[:, order], vr[:, order]
    right = U @ vr
    left = W.T @ vl.conj()  # scipy: vl^H M = lambda vl^H, so t = conj(vl) and l = W^T t
    left = left / np.einsum("ik,ik->k", left, right)  # l^T r = 1
    ends = np.cumsum([len(g) for g in groups])
    modes = tuple(tuple(range(end - len(g), end)) for g, end in zip(groups, ends))
    return LowRankSpectrum(lam, right, left, modes)


def head_model(W_Q_h, W_K_h, W_V_h, W_O_h, beta: float = 1.0,
               normalized: bool = True) -> Attention:
    """``Attention(beta, d=H, Q=I, K=W_Q_h^T W_K_h, V=W_O_h W_V_h)`` (module docstring): the
    kernel's form is Q^T K = (W_Q^h)^T W_K^h, so <Q x, K y> = <W_Q^h x, W_K^h y>.
    ``W_Q_h``, ``W_K_h``, ``W_V_h``: (d_h, H), the head's rows; ``W_O_h``: (H, d_h)."""
    Wq, Wk, Wv, Wo = (np.asarray(m, dtype=np.float64) for m in (W_Q_h, W_K_h, W_V_h, W_O_h))
    if Wq.ndim != 2:
        raise ValueError(f"W_Q_h must be a (d_h, H) matrix, got shape {Wq.shape}")
    for name, m, shape in (("W_K_h", Wk, Wq.shape), ("W_V_h", Wv, Wq.shape),
                           ("W_O_h", Wo, Wq.shape[::-1])):
        if m.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {m.shape}")
    H = Wq.shape[1]
    return Attention(beta=beta, d=H, Q=np.eye(H), K=Wq.T @ Wk, V=Wo @ Wv,
                     normalized=normalized)


def head_flow(weights, layer: int, head: int, beta: float = 1.0):
    """(model, spectrum) of one head of ``weights`` (a BertWeights; counted from 0)."""
    m = weights.head_matrices(layer, head)
    return (head_model(m["W_Q"], m["W_K"], m["W_V"], m["W_O"], beta),
            low_rank_spectrum(m["W_O"], m["W_V"]))


def reduce(model, spectrum: LowRankSpectrum, x0, tol: float = 1e-12):
    """The same flow in coordinates of an invariant subspace: returns (model', spectrum', z0,
    B) with B (H, k) orthonormal, x = B z, k <= N + rank.

    Why it is exact: V = U W maps into range(U), so x_i' = V m_i - <x_i, V m_i> x_i keeps every
    token in S = span(x_1(0), ..., x_N(0)) + range(U); with B an orthonormal basis of S,
    <x, A y> = z^T (B^T A B) z', |x| = |z|, and V x = B (B^T V B) z for x in S. The competing
    mode's projector maps into range(U) too, so V + eps P_2 keeps S. Geodesic distances are
    those of the z: W_2 is unchanged. The field then costs O(N k^2) instead of O(N H^2)."""
    x0 = np.asarray(x0, dtype=np.float64)
    basis = np.hstack([x0.T, spectrum.right.real, spectrum.right.imag])
    u, sv, _ = np.linalg.svd(basis, full_matrices=False)
    B = u[:, sv > tol * sv[0]]
    reduced = Attention(beta=model.beta, d=B.shape[1], Q=np.eye(B.shape[1]),
                        K=B.T @ model.A @ B, V=B.T @ model.V @ B, normalized=model.normalized)
    sp = LowRankSpectrum(spectrum.eigenvalues, B.T @ spectrum.right, B.T @ spectrum.left,
                         spectrum.modes)
    z0 = x0 @ B
    return reduced, sp, z0 / np.linalg.norm(z0, axis=1, keepdims=True), B


def layer_tokens(weights, ids_list, layer: int) -> np.ndarray:
    """The tokens that enter ``layer`` (the previous layer's output; the embeddings for
    layer 0) for every sentence of ``ids_list``, by the float64 reference forward pass,
    normalised onto the unit sphere: (total tokens, H)."""
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) \
            or not 0 <= layer < weights.n_layers:
        raise ValueError(f"layer must be an integer in [0, {weights.n_layers - 1}], "
                         f"got {layer!r}")
    x = np.concatenate([forward(weights, ids).hidden_states[layer] for ids in ids_list])
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def mode_ratio(points, spectrum: LowRankSpectrum, top: int = 0, competing: int = 1):
    """s_i = log |Pi_competing x_i| - log |Pi_top x_i| for every token (N,)."""
    x = np.asarray(points, dtype=np.float64)
    logs = []
    for k in (competing, top):
        idx = list(spectrum.modes[k])
        component = ((x @ spectrum.left[:, idx]) @ spectrum.right[:, idx].T).real  # Pi_k x
        logs.append(np.log(np.maximum(np.linalg.norm(component, axis=1), 1e-300)))
    return logs[0] - logs[1]


def late_slope(times, clouds, spectrum: LowRankSpectrum, start: float = 0.5) -> float:
    """Least-squares slope in t of the token mean of :func:`mode_ratio` over the saved times
    from the fraction ``start`` of the run on: eps - g once the tokens have clustered (module
    docstring); > 0: the tokens leave the top mode for the competing one."""
    times = np.asarray(times, dtype=np.float64)
    sel = np.nonzero(times >= times[0] + start * (times[-1] - times[0]) - 1e-12)[0]
    if sel.size < 2:
        raise ValueError("fewer than two saved times after start")
    s = [float(np.mean(mode_ratio(clouds[i], spectrum))) for i in sel]
    return float(np.polyfit(times[sel], s, 1)[0])


def flow(model, x0, T: float, n_times: int = 81, eps: float = 0.0, spectrum=None, times=None):
    """Tokens ``x0`` moved by the model (``eps`` > 0: by V + eps P_1, the competing mode moved
    by eps) to time T by DOP853; returns the Trajectory, saved at ``times`` (default
    ``n_times`` equispaced times in [0, T])."""
    if eps:
        model = model.perturbed(V=eps * spectrum.projector(1))
    times = np.linspace(0.0, T, n_times) if times is None else times
    return simulate(model, x0, T, times=times, method="dop853", rtol=FLOW_RTOL, atol=FLOW_ATOL,
                    progress=False)


def collapsed(model, x0, t: float) -> np.ndarray:
    """The tokens of the base flow from ``x0`` at time t (a clustered start)."""
    return flow(model, x0, t, 2).points[-1]


def switch_bracket(model, spectrum: LowRankSpectrum, x0, T: float, steps: int = 6,
                   kappa_max: float = 3.0):
    """Bisection bracket (lo, hi) in eps of the switch of the flow from ``x0``: the sign change
    of :func:`late_slope` over [T/2, T], searched for kappa = eps / g in [0, kappa_max]
    (kappa_max = 3: no midpoint is ever exactly g, where the slope is 0); ``None`` if the
    sign does not change between the ends. Returns (bracket, [(eps, slope), ...])."""
    g = spectrum.gap()
    tried = []

    def slope(eps):
        run = flow(model, x0, T, eps=eps, spectrum=spectrum)
        value = late_slope(run.times, run.points, spectrum)
        tried.append((eps, value))
        return value

    lo, hi = 0.0, kappa_max * g
    if not (slope(lo) < 0 < slope(hi)):
        return None, tried
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if slope(mid) < 0 else (lo, mid)
    return (lo, hi), tried


def deviation_times(model, spectrum: LowRankSpectrum, x0, kappas, delta: float,
                    horizon: float = 12.0, n_times: int = 161) -> list:
    """For each kappa > 1 (eps = kappa g): T_dev(delta) of the fine-tuned flow against the base
    flow, both from ``x0`` (the first time W_2, geodesic, between the two clouds reaches
    ``delta``; inf if never), on a grid of ``n_times`` saved times up to
    T = horizon / (eps - g), and the :func:`late_slope` of the fine-tuned run. One base run
    serves every kappa (saved at the union of the grids). Returns a list of dicts
    {"kappa", "eps", "T_dev", "late_slope"}."""
    from continuum import Measure
    from continuum.wasserstein import wasserstein_sphere

    g = spectrum.gap()
    kappas = [float(k) for k in kappas]
    if not kappas or min(kappas) <= 1:
        raise ValueError(f"kappas must be > 1 (eps above the gap), got {kappas}")
    grids = [np.linspace(0.0, horizon / ((k - 1.0) * g), n_times) for k in kappas]
    union = np.unique(np.concatenate(grids))
    base = flow(model, x0, union[-1], times=union)
    where = {t: i for i, t in enumerate(union)}
    out = []
    for kappa, grid in zip(kappas, grids):
        tuned = flow(model, x0, grid[-1], eps=kappa * g, spectrum=spectrum, times=grid)
        D = [wasserstein_sphere(Measure(base.points[where[t]]), Measure(y))
             for t, y in zip(grid, tuned.points)]
        out.append({"kappa": kappa, "eps": kappa * g,
                    "T_dev": time_to_deviation(grid, D, delta),
                    "late_slope": late_slope(grid, tuned.points, spectrum)})
    return out


def deviation_time(model, spectrum: LowRankSpectrum, x0, kappa: float, delta: float,
                   horizon: float = 12.0, n_times: int = 161) -> float:
    """T_dev(delta) for one kappa (:func:`deviation_times`)."""
    return deviation_times(model, spectrum, x0, [kappa], delta, horizon, n_times)[0]["T_dev"]


def selected_heads(weights, count: int = 3) -> list:
    """(layer, head, g) of the ``count`` heads with the largest gap whose top two OV modes are
    real with lambda_2 > 0: the top mode is one direction and the competing one another."""
    found = []
    for layer in range(weights.n_layers):
        for head in range(weights.n_heads):
            m = weights.head_matrices(layer, head)
            sp = low_rank_spectrum(m["W_O"], m["W_V"])
            if sp.is_real(0) and sp.is_real(1) and sp.real_part(1) > 0:
                found.append((layer, head, sp.gap()))
    return sorted(found, key=lambda item: -item[2])[:count]


def measure_head(weights, layer: int, head: int, ids_list, kappas=(1.25, 1.5, 2.0, 2.5, 3.0),
                 delta: float = 0.3, steps: int = 6, beta: float = 1.0) -> dict:
    """The flow of one head from the tokens entering its layer (``ids_list``): the switch
    bracket (:func:`switch_bracket`, T = 15 / g) and, for each kappa, T_dev(delta) from the
    clustered start (the base flow at t = 8 / g) and from the raw tokens (horizon
    3 / (eps - g): the deviation comes early there), with the products T_dev (eps - g) and
    the late slopes. Runs in the reduced coordinates of :func:`reduce` (exact)."""
    model, sp = head_flow(weights, layer, head, beta)
    g = sp.gap()
    model, sp, x0, _ = reduce(model, sp, layer_tokens(weights, ids_list, layer))
    bracket, tried = switch_bracket(model, sp, x0, 15.0 / g, steps=steps)
    clustered = deviation_times(model, sp, collapsed(model, x0, 8.0 / g), kappas, delta)
    raw = deviation_times(model, sp, x0, kappas, delta, horizon=3.0)
    rows = [{"kappa": c["kappa"], "eps": c["eps"], "T_dev_clustered": c["T_dev"],
             "T_dev_raw": r["T_dev"], "product_clustered": c["T_dev"] * (c["eps"] - g),
             "product_raw": r["T_dev"] * (r["eps"] - g), "late_slope": c["late_slope"]}
            for c, r in zip(clustered, raw)]
    return {"layer": int(layer), "head": int(head), "g": g, "beta": beta, "delta": delta,
            "lambda": [sp.real_part(0), sp.real_part(1)], "tokens": len(x0),
            "coordinates": x0.shape[1], "steps": steps,
            "bracket": None if bracket is None else [float(b) for b in bracket],
            "tried": [[float(e), float(v)] for e, v in tried], "rows": rows}
