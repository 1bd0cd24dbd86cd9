"""Observables of a LoRA update of all-MiniLM-L6-v2 (issue 12, item 3).

An update is a LoRA dict and its :class:`realmodel.lora.LoraConfig`; the fine-tuned model is
``merge_lora(weights, lora, config)``. What is measured:

- the update itself: eigenvalues and norms of every dense :math:`(\\alpha/r) B A`
  (:func:`lora_spectrum`);
- the heads: OV spectra and gaps before and after (:func:`ov_spectra`), and how far the top
  mode of each head's :math:`M_h = W_V^h W_O^h` turns, against first-order perturbation theory
  and the ratio :math:`\\|\\Delta_h\\|_2 / g_h` (:func:`head_rotations`,
  :func:`top_mode_rotation`);
- what the model forgets: word and document similarity against human scores
  (:func:`similarity_probes`), question -> answer retrieval (:func:`retrieval_mrr`), both
  defined item by item in :mod:`realmodel.probes` (with chance levels, ceilings, intervals)
  and re-exported here;
- the token clouds layer by layer, base against tuned (:func:`layer_deviation`);
- :func:`probe_all` bundles the last three for one (base, tuned) pair.

Engine: the float64 numpy forward pass (:mod:`realmodel.numpy_model`) on merged weights; no
JAX. Measured on MiniLM (2 cores, OMP_NUM_THREADS=1, load average ~2, 2026-11-29):
:func:`similarity_probes` 6.7 s (SimLex 1028 words, WordSim 437, Lee 50 documents of ~100
tokens), :func:`retrieval_mrr` 10.3 s with 300 pairs (389 distinct texts, 11478 tokens: the
first pairs include long answers) and 19 s with all 2306, :func:`layer_deviation` 2.3 s on 20
Pang-Lee sentences (603 tokens), so :func:`probe_all` of a tuned model takes ~18 s with the
base probes cached. The matrix products run at ~43 GFlop/s, near one core's float64 peak;
JAX's float32 batched encode (padded buckets) took 4.3 s for the 300 pairs (10.7 s with
compilation) and 3.5 s for SimLex, not enough to give up the float64 reference.
:func:`head_rotations` of 72 MiniLM heads takes ~6 s (~50 homotopy steps of a 32 x 32
eigendecomposition per head).

Probe results are cached per BertWeights object (weakly: the entry goes with the object).
BertWeights is immutable (frozen dataclass, read-only arrays), so an object's probes never
change; a study that calls :func:`probe_all` for many tuned models with one base object
computes the base probes once. ``probe_all(..., base=...)`` takes them precomputed instead.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.optimize import linear_sum_assignment

from continuum import Measure
from continuum.wasserstein import wasserstein_sphere

from .lora import LoraConfig, _check_lora, dense_updates, lora_key
from .numpy_model import forward
from .probes import PROBE_KEYS, check_weights, retrieval_mrr, similarity_probes
from .spectra import (
    eigen_perturbation,
    mode_indices,
    ov_spectrum,
    spectral_gap,
)

__all__ = ["lora_spectrum", "ov_spectra", "top_mode_rotation", "head_rotations",
           "similarity_probes", "retrieval_mrr", "layer_deviation", "probe_all",
           "PROBE_KEYS", "MAX_CLOUD"]

#: most tokens per cloud in :func:`layer_deviation` (exact transport: O(N^2) memory, ~N^3 time)
MAX_CLOUD = 3000



# ---------------------------------------------------------------------------- input checks

_check_weights = check_weights


def _check_pair(weights, tuned_weights) -> None:
    _check_weights(weights, "weights")
    _check_weights(tuned_weights, "tuned_weights")
    shape = (weights.n_layers, weights.hidden, weights.n_heads, weights.vocab_size)
    tuned = (tuned_weights.n_layers, tuned_weights.hidden, tuned_weights.n_heads,
             tuned_weights.vocab_size)
    if tuned != shape:
        raise ValueError(f"tuned_weights must have the structure of weights (layers, hidden, "
                         f"heads, vocabulary) {shape}, got {tuned}")


def _check_config(config) -> None:
    if not isinstance(config, LoraConfig):
        raise ValueError(f"config must be a LoraConfig, got {type(config).__name__}")


def _plain_complex(z) -> dict:
    return {"re": float(np.real(z)), "im": float(np.imag(z))}


# ---------------------------------------------------------------------------- the update

def lora_spectrum(lora: dict, config: LoraConfig) -> dict:
    """Eigenvalues and norms of every dense LoRA update :math:`\\Delta = (\\alpha/r) B A`.

    :math:`\\Delta` is H x H of rank <= r. Its nonzero eigenvalues are those of the r x r
    matrix :math:`(\\alpha/r) A B` (AB and BA share their nonzero spectrum), so the r
    eigenvalues returned are the spectrum of :math:`(\\alpha/r) A B`: all nonzero
    eigenvalues of :math:`\\Delta` and, if A B is singular, zeros. The norms come from the
    r x r core: with thin QR factorisations :math:`B = Q_B R_B`, :math:`A^T = Q_A R_A`,

    .. math::

        \\Delta = Q_B \\big(\\tfrac{\\alpha}{r} R_B R_A^T\\big) Q_A^T, \\qquad
        \\|\\Delta\\|_2 = \\sigma_1, \\quad \\|\\Delta\\|_F = \\Big(\\sum_k \\sigma_k^2\\Big)^{1/2},

    :math:`\\sigma_k` the singular values of the core. The published code plots the
    eigenvalues of B A without the factor alpha / r; here it is included.

    Parameters
    ----------
    lora : dict
        ``{"<layer>.<target>": {"A": (r, H), "B": (H, r)}}`` (:mod:`realmodel.lora`).
    config : LoraConfig

    Returns
    -------
    dict
        ``{key: {"eigenvalues_re": [r floats], "eigenvalues_im": [r floats],
        "spectral_norm": float, "frobenius": float}}``, eigenvalues by modulus descending
        (ties: real part, then imaginary part descending).
    """
    _check_config(config)
    _check_lora(lora, config)
    out = {}
    for key in config.keys():
        A = np.asarray(lora[key]["A"], dtype=np.float64)
        B = np.asarray(lora[key]["B"], dtype=np.float64)
        if not (np.all(np.isfinite(A)) and np.all(np.isfinite(B))):
            raise ValueError(f"lora[{key!r}] has non-finite entries")
        lam = np.linalg.eigvals(config.scale * (A @ B))
        lam = lam[np.lexsort((-lam.imag, -lam.real, -np.abs(lam)))]
        core = config.scale * np.linalg.qr(B)[1] @ np.linalg.qr(A.T)[1].T
        sigma = np.linalg.svd(core, compute_uv=False)
        out[key] = {"eigenvalues_re": lam.real.tolist(), "eigenvalues_im": lam.imag.tolist(),
                    "spectral_norm": float(sigma[0]),
                    "frobenius": float(np.sqrt(np.sum(sigma ** 2)))}
    return out


def ov_spectra(weights, tuned_weights, layers=None) -> dict:
    """OV spectra and gaps of every head, before and after an update.

    For each layer l and head h: the eigenvalues of :math:`M_h = W_V^h W_O^h` of ``weights``
    and of ``tuned_weights`` (:func:`realmodel.spectra.ov_spectrum`, by real part descending)
    and their gaps :math:`g = \\operatorname{Re}\\lambda_{(1)} - \\operatorname{Re}
    \\lambda_{(2)}`, a conjugate pair counted as one mode
    (:func:`realmodel.spectra.spectral_gap`).

    Parameters
    ----------
    weights, tuned_weights : BertWeights
        Same structure (e.g. ``tuned_weights = merge_lora(weights, lora, config)``).
    layers : sequence of int, optional
        Layers (counted from 0); default all.

    Returns
    -------
    dict
        ``{"<layer>.<head>": {"eigenvalues_before_re", "eigenvalues_before_im",
        "eigenvalues_after_re", "eigenvalues_after_im": [d_h floats], "gap_before",
        "gap_after": float}}``.
    """
    _check_pair(weights, tuned_weights)
    if layers is None:
        layers = range(weights.n_layers)
    elif isinstance(layers, (int, np.integer)):
        raise ValueError(f"layers must be a sequence of layer indices, got {layers!r}")
    out = {}
    for layer in layers:
        if (isinstance(layer, bool) or not isinstance(layer, (int, np.integer))
                or not 0 <= layer < weights.n_layers):
            raise ValueError(f"layers must hold integers in [0, {weights.n_layers - 1}] "
                             f"(counted from 0), got {layer!r}")
        for head in range(weights.n_heads):
            row = {}
            for when, w in (("before", weights), ("after", tuned_weights)):
                lam = ov_spectrum(w, int(layer), head)
                row[f"eigenvalues_{when}_re"] = lam.real.tolist()
                row[f"eigenvalues_{when}_im"] = lam.imag.tolist()
                row[f"gap_{when}"] = spectral_gap(lam)
            out[f"{int(layer)}.{head}"] = row
    return out


# ---------------------------------------------------------------------------- the heads

def _eig(M):
    """Eigenvalues, unit right eigenvectors R and the left ones as the rows of R^{-1}
    (l_i^H = row i: l_i^H r_j = delta_ij)."""
    lam, R = np.linalg.eig(M)
    R = R / np.linalg.norm(R, axis=0)
    return lam, R, np.linalg.inv(R)


def _real_span(vectors) -> np.ndarray:
    """Orthonormal basis of the real span of the real and imaginary parts of the columns (a
    real eigenvector: its line; a complex one: the 2-D real invariant plane of its pair)."""
    return scipy.linalg.orth(np.hstack([vectors.real, vectors.imag]), rcond=1e-10)


def _largest_angle(U, V) -> float:
    return float(np.max(scipy.linalg.subspace_angles(U, V)))


#: a homotopy step is clear when each new eigenvector lies in one old mode's invariant subspace
#: up to this (component norm within it of 1, every other below it)
_STEP_TOL = 0.3


def _mode_overlaps(R, Lh, modes, R_new) -> np.ndarray:
    """W[I, j] = |P_I r'_j| for the spectral projectors P_I = R_I L_I^H of the old modes and
    the new unit eigenvectors r'_j (sum_I P_I = I, so the rows of a clear step are ~0 or ~1).
    A real mode's r_i has unit norm, so its row is |l_i^H r'_j|."""
    K = Lh @ R_new
    W = np.abs(K[[idx[0] for idx in modes]])
    for row, idx in enumerate(modes):
        if len(idx) == 2:
            W[row] = np.linalg.norm(R[:, idx] @ K[idx], axis=0)
    return W


def _continue_top_mode(M, Delta, max_step: float, min_step: float):
    """Follow the top mode of M + t Delta from t = 0 to 1 (:func:`top_mode_rotation`).
    Returns (lam0, R0, top0, lam1, R1, continued, steps): the eigenvalues and unit right
    eigenvectors at t = 0 and 1, the indices of the top mode at 0 and of its continuation at 1,
    and the number of steps."""
    lam, R, Lh = _eig(M)
    modes = mode_indices(lam)
    lam0, R0, top0 = lam, R, modes[0]
    flag = np.isin(np.arange(lam.size), top0)  # eigenvalues continuing the old top mode
    t, h, steps = 0.0, max_step, 0
    while t < 1.0:
        t_next = 1.0 if t + h >= 1.0 - 1e-12 else t + h
        lam_n, R_n, Lh_n = _eig(M + t_next * Delta)
        modes_n = mode_indices(lam_n)
        W = _mode_overlaps(R, Lh, modes, R_n)
        best = np.argmax(W, axis=0)  # old mode of each new eigenvalue
        others = W.copy()
        others[best, np.arange(lam_n.size)] = 0.0
        clear = (np.all(np.abs(W.max(axis=0) - 1.0) <= _STEP_TOL)
                 and np.all(others <= _STEP_TOL)
                 and sorted(tuple(sorted(best[J])) for J in modes_n)
                 == sorted((i,) * len(idx) for i, idx in enumerate(modes)))
        if not clear and t_next - t > min_step:
            h = (t_next - t) / 2
            continue
        if clear:
            flag_n = np.array([flag[modes[i]].any() for i in best])
            h = min(2 * h, max_step)
        else:  # smallest step and still no clear match (a collision): eigenvalue by eigenvalue
            rows, cols = linear_sum_assignment(-np.abs(Lh @ R_n))
            flag_n = np.empty_like(flag)
            flag_n[cols] = flag[rows]
        for J in modes_n:  # a mode continues the top mode if any of its eigenvalues does
            flag_n[J] = flag_n[J].any()
        lam, R, Lh, modes, flag = lam_n, R_n, Lh_n, modes_n, flag_n
        t, steps = t_next, steps + 1
    return lam0, R0, top0, lam, R, np.flatnonzero(flag), steps


def top_mode_rotation(M, Delta, max_step: float = 1 / 16, min_step: float = 1e-6) -> dict:
    """How the top mode of a real matrix M moves under M -> M + Delta, exactly and to first
    order, and whether it stays on top.

    Modes: a real eigenvalue, or a complex-conjugate pair (one mode, one real invariant
    plane); the top mode has the largest real part (:func:`realmodel.spectra.mode_indices`).

    **Continuation.** Which eigenvalues of M + Delta continue the old top mode is decided by a
    homotopy :math:`M(t) = M + t\\Delta`, t from 0 to 1, in small steps. At each step every
    eigenpair is computed and every new unit right eigenvector :math:`r_j'` is decomposed over
    the previous step's modes by their spectral projectors :math:`P_I = \\sum_{i \\in I} r_i
    l_i^H` (:math:`l_i^H r_i = 1`; :math:`\\sum_I P_I = I`): the overlaps
    :math:`W_{Ij} = \\|P_I r_j'\\|` are near 1 for the mode that :math:`r_j'` continues and
    near 0 for the others. Working with modes rather than single eigenvectors keeps the two
    members of a conjugate pair together (their eigenvectors are nearly parallel when the
    imaginary part is small, a pair's projector is not). A step is accepted when the match is
    clear: every :math:`W_{Ij}` within 0.3 of 0 or 1 and the modes matched one to one with
    equal sizes; else it is halved, down to ``min_step``, where it is accepted with an
    eigenvalue-by-eigenvalue assignment maximising :math:`\\sum |l_i^H r_j'|` (Hungarian
    algorithm). That happens at a collision of two real eigenvalues turning into a pair (or
    the reverse), where the mode count changes and the eigenvectors merge; a new mode
    continues the top mode if any of its eigenvalues does. After a clear step the step doubles
    again, up to ``max_step``. Real parts that cross are followed through the crossing (the
    eigenvectors stay distinct), so the top mode can change identity.

    **Outputs.** With :math:`g` the gap of M (:func:`realmodel.spectra.spectral_gap`):

    - ``rotation``: the largest principal angle between the old top mode's real invariant
      subspace (its eigenvector's line, or the plane of a pair) and that of its continuation
      at t = 1 (if a real eigenvalue became part of a pair, or the reverse, the subspaces
      differ in dimension and the angle is the largest of the min(dim) principal angles).
    - ``predicted_rotation``: the first order of the same angle from
      :func:`realmodel.spectra.eigen_perturbation` (eigenpair 0: r and dr): for a real top
      mode :math:`\\|(I - r r^T) dr\\|`; for a pair, with :math:`X = [\\operatorname{Re} r,
      \\operatorname{Im} r] = Q R_X` and :math:`dX = [\\operatorname{Re} dr, \\operatorname{Im}
      dr]`, the norm :math:`\\|(I - Q Q^T)\\, dX\\, R_X^{-1}\\|_2` (the principal angles of
      span(X) and span(X + dX) to first order). rotation / predicted_rotation = 1 + O(||Delta||).
    - ``flipped``: True when no eigenvalue of the top mode of M + Delta continues the old top
      mode (another old mode has overtaken it).

    Parameters
    ----------
    M, Delta : array_like (n, n)
        Real, finite; M needs at least two modes.
    max_step, min_step : float
        Largest and smallest homotopy steps in t.

    Returns
    -------
    dict
        ``delta_norm`` (:math:`\\|\\Delta\\|_2`), ``gap`` (g), ``ratio`` (:math:`\\|\\Delta\\|_2
        / g`; inf if g = 0 < ||Delta||), ``rotation``, ``predicted_rotation`` (radians),
        ``flipped`` (bool), ``top_before`` (top eigenvalue of M), ``top_after`` (top eigenvalue
        of M + Delta), ``continued`` (the continuation of ``top_before``), ``first_order``
        (:math:`\\lambda + l^H \\Delta r / l^H r`), each ``{"re", "im"}`` (of a pair the member
        with Im > 0), and ``steps`` (homotopy steps taken).
    """
    M = np.asarray(M, dtype=np.float64) if np.isrealobj(M) else np.asarray(M)
    Delta = np.asarray(Delta, dtype=np.float64) if np.isrealobj(Delta) else np.asarray(Delta)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or not np.isrealobj(M):
        raise ValueError(f"M must be a real square matrix, got shape {M.shape} dtype {M.dtype}")
    if Delta.shape != M.shape or not np.isrealobj(Delta):
        raise ValueError(f"Delta must be a real matrix of the shape of M {M.shape}, got shape "
                         f"{Delta.shape} dtype {Delta.dtype}")
    for name, a in (("M", M), ("Delta", Delta)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} has non-finite entries")
    if not (0 < min_step <= max_step <= 1):
        raise ValueError(f"need 0 < min_step <= max_step <= 1, got min_step {min_step!r}, "
                         f"max_step {max_step!r}")
    if len(mode_indices(np.linalg.eigvals(M))) < 2:
        raise ValueError("M must have at least two modes (a conjugate pair is one)")
    lam0, R0, top0, lam1, R1, continued, steps = _continue_top_mode(M, Delta, max_step,
                                                                    min_step)
    continued = continued[np.lexsort((-lam1[continued].imag, -lam1[continued].real))]
    top1 = mode_indices(lam1)[0]
    gap = spectral_gap(lam0)
    delta_norm = float(np.linalg.norm(Delta, 2))
    p = eigen_perturbation(M, Delta, index=0)
    if len(top0) == 1:
        predicted = p.rotation
    else:
        Q, RX = np.linalg.qr(np.column_stack([p.right.real, p.right.imag]))
        dX = np.column_stack([p.vector_shift.real, p.vector_shift.imag])
        tangent = dX - Q @ (Q.T @ dX)
        predicted = float(np.linalg.norm(scipy.linalg.solve_triangular(RX.T, tangent.T,
                                                                       lower=True).T, 2))
    if delta_norm == 0:
        ratio = 0.0
    else:
        ratio = delta_norm / gap if gap > 0 else float("inf")
    return {"delta_norm": delta_norm, "gap": gap, "ratio": ratio,
            "rotation": _largest_angle(_real_span(R0[:, top0]), _real_span(R1[:, continued])),
            "predicted_rotation": float(predicted),
            "flipped": not bool(np.isin(continued, top1).any()),
            "top_before": _plain_complex(lam0[top0[0]]),
            "top_after": _plain_complex(lam1[top1[0]]),
            "continued": _plain_complex(lam1[continued[0]]),
            "first_order": _plain_complex(p.first_order), "steps": int(steps)}


def head_rotations(weights, lora: dict, config: LoraConfig) -> list:
    """:func:`top_mode_rotation` of every head of every layer whose W_V the update adapts.

    For layer l and head h, :math:`M_h = W_V^h W_O^h` (d_h x d_h;
    :func:`realmodel.spectra.ov_matrix`) and its change under :math:`W_V \\to W_V + \\Delta_V`
    (:math:`\\Delta_V = (\\alpha/r) B A` of key ``"<l>.V"``) is exactly

    .. math::

        \\Delta_h = \\Delta_V^h W_O^h,

    :math:`\\Delta_V^h` the head's d_h rows of :math:`\\Delta_V`. Updates of Q and K do not
    change the OV circuit and are not looked at.

    Parameters
    ----------
    weights : BertWeights
        Base model.
    lora : dict
    config : LoraConfig

    Returns
    -------
    list of dict
        One per (layer, head) of the adapted V layers (layer-major; empty if V is not a
        target): ``{"layer", "head"}`` and the keys of :func:`top_mode_rotation`.
    """
    _check_weights(weights, "weights")
    _check_config(config)
    config.check(weights)
    updates = dense_updates(lora, config)
    if "V" not in config.targets:
        return []
    d = weights.head_dim
    out = []
    for layer in config.layers:
        delta_V = updates[lora_key(layer, "V")]
        for head in range(weights.n_heads):
            m = weights.head_matrices(layer, head)
            row = {"layer": int(layer), "head": head}
            row.update(top_mode_rotation(m["W_V"] @ m["W_O"],
                                         delta_V[head * d:(head + 1) * d] @ m["W_O"]))
            out.append(row)
    return out


# ---------------------------------------------------------------------------- token clouds

def layer_deviation(weights, tuned_weights, ids_list) -> dict:
    """Distance between the token clouds of a base and a tuned model, layer by layer.

    For each sentence, both models' hidden states :math:`x^{(l)}_i`, :math:`y^{(l)}_i`
    (:func:`realmodel.numpy_model.forward`; l = 0 the embeddings after their LayerNorm, l the
    output of layer l - 1 for l >= 1) are normalised onto the unit sphere :math:`S^{H-1}`.
    The tokens of all sentences form one cloud per model and layer, N tokens in all, and

    .. math::

        W_2^{(l)} = W_2\\Big(\\frac{1}{N}\\sum_i \\delta_{\\hat x^{(l)}_i},
        \\frac{1}{N}\\sum_i \\delta_{\\hat y^{(l)}_i}\\Big), \\qquad
        \\bar d^{(l)} = \\frac{1}{N}\\sum_i \\arccos\\langle \\hat x^{(l)}_i,
        \\hat y^{(l)}_i\\rangle,

    W_2 with the geodesic ground cost, exact (:func:`continuum.wasserstein.wasserstein_sphere`,
    network simplex), and :math:`\\bar d` the mean geodesic distance of each token to itself
    (same sentence, same position), computed as :math:`2 \\arcsin(|\\hat x - \\hat y| / 2)`
    (equal to the arccos, accurate for nearby points). :math:`W_2 \\le (\\frac1N \\sum_i
    d_i^2)^{1/2}` (the identity coupling is one plan). Identical inputs give exactly 0.

    Parameters
    ----------
    weights, tuned_weights : BertWeights
        Same structure.
    ids_list : sequence of int arrays
        Token ids of the (held-out) sentences; at most :data:`MAX_CLOUD` tokens in all.

    Returns
    -------
    dict
        ``{"w2": [L + 1 floats], "mean_geodesic": [L + 1 floats]}``.
    """
    _check_pair(weights, tuned_weights)
    if isinstance(ids_list, np.ndarray) and ids_list.ndim == 1:
        raise ValueError("ids_list must be a sequence of token-id arrays (one per sentence), "
                         "got one 1-D array (wrap it in a list)")
    ids_list = list(ids_list)
    if not ids_list:
        raise ValueError("ids_list must hold at least one sentence")
    n_tokens = sum(np.size(ids) for ids in ids_list)
    if n_tokens > MAX_CLOUD:
        raise ValueError(f"ids_list has {n_tokens} tokens, more than MAX_CLOUD = {MAX_CLOUD} "
                         "(exact transport is O(N^2) in memory): use fewer sentences")

    def clouds(w):
        states = np.concatenate([forward(w, ids).hidden_states for ids in ids_list], axis=1)
        return states / np.linalg.norm(states, axis=-1, keepdims=True)

    x, y = clouds(weights), clouds(tuned_weights)
    w2, geodesic = [], []
    for layer in range(weights.n_layers + 1):
        w2.append(wasserstein_sphere(Measure(x[layer]), Measure(y[layer]), p=2,
                                     cost="geodesic"))
        chord = np.linalg.norm(x[layer] - y[layer], axis=1)
        geodesic.append(float(np.mean(2.0 * np.arcsin(np.minimum(0.5 * chord, 1.0)))))
    return {"w2": w2, "mean_geodesic": geodesic}


def probe_all(weights, tuned_weights, held_out_ids, n_pairs=None, base=None) -> dict:
    """Forgetting probes of one (base, tuned) pair: :func:`similarity_probes` and
    :func:`retrieval_mrr` of each model, and :func:`layer_deviation` between them.

    Parameters
    ----------
    weights, tuned_weights : BertWeights
        Base and fine-tuned model (``merge_lora(weights, lora, config)``).
    held_out_ids : sequence of int arrays
        Sentences of :func:`layer_deviation`.
    n_pairs : int, optional
        Question-answer pairs of :func:`retrieval_mrr` (default all).
    base : dict, optional
        The base probes, precomputed (a previous result's ``"base"``, for the same n_pairs);
        otherwise computed (and cached per weights object).

    Returns
    -------
    dict
        ``{"base": probes, "tuned": probes, "deviation": {"w2", "mean_geodesic"}}``, probes
        ``{"simlex999", "wordsim353", "lee_pearson", "lee_spearman", "retrieval_mrr"}``
        (:data:`PROBE_KEYS`).
    """
    _check_pair(weights, tuned_weights)
    if base is not None:
        if not isinstance(base, dict) or sorted(base) != sorted(PROBE_KEYS):
            got = sorted(base) if isinstance(base, dict) else type(base).__name__
            raise ValueError(f"base must be a dict with keys {list(PROBE_KEYS)}, got {got}")
        base = {k: float(base[k]) for k in PROBE_KEYS}

    def probes(w):
        return {**similarity_probes(w), "retrieval_mrr": retrieval_mrr(w, n_pairs)}

    return {"base": base if base is not None else probes(weights),
            "tuned": probes(tuned_weights),
            "deviation": layer_deviation(weights, tuned_weights, held_out_ids)}
