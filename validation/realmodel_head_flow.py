"""Claim (issue 12): the mean-field flow of a real attention head switches limit at eps = g, and
from a clustered start its time to deviation obeys T_dev (eps - g) = const.

Setting (``realmodel.flow``): all-MiniLM-L6-v2; one head's bilinear forms lifted to the residual
space R^384, Attention(beta = 1, d = 384, Q = I, K = (W_Q^h)^T W_K^h, V = W_O^h W_V^h), SA;
tokens: the hidden states that enter the head's layer for the first four Pang-Lee polarity
sentences (98 tokens), normalised onto S^383. Heads: the three with the largest gap
g = lambda_1 - lambda_2 among those whose top two OV modes are real with lambda_2 > 0 (a
rule, so that the top mode is one direction and the competing one a different direction:
layer 3 head 6, layer 3 head 7, layer 2 head 6, g = 0.50, 0.42, 0.36). The perturbation
moves the competing mode: V + eps P_2 (P_2 its spectral projector), eps = kappa g.

Claims, per head:

1. Switch at g. The late slope of the token mean of log(|P_2 x| / |P_1 x|) over [T/2, T]
   (T = 15 / g) is eps - g once the cloud has clustered (a theorem for a Dirac, module
   ``realmodel.flow``), so its sign changes at eps = g. Bisection in kappa = eps / g on
   [0, 3] (no midpoint is exactly 1), 6 steps; pass:
   g inside the bracket widened by 1.5 bisection widths (as in forgetting_continuum_threshold:
   half a width to the outer end, one width for a classifier error next to the edge).
2. T_dev (eps - g) constant. From the clustered start (the base flow at t_c = 8 / g), base and
   fine-tuned runs to 12 / (eps - g); T_dev = first time W_2 (geodesic) between the two clouds
   reaches 0.3. For a Dirac cluster T_dev = (s_* - s(t_c)) / (eps - g). Pass: the products for
   kappa in {1.25, 1.5, 2, 2.5, 3} within 10% of their mean (the issue's tolerance).

Also measured and reported, not asserted: T_dev (eps - g) from the raw hidden states
(unclustered start, horizon 3 / (eps - g)), where the perturbation acts before the cloud has
clustered and the product is not constant.
Runtime: about 20 s per head on one core (one piece per head).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "realmodel_head_flow"
KAPPAS = (1.25, 1.5, 2.0, 2.5, 3.0)
DELTA, N_SENTENCES, STEPS = 0.3, 4, 6


def selected_heads(weights, count: int = 3):
    """(layer, head, g) of the ``count`` heads with the largest gap whose top two OV modes
    are real with lambda_2 > 0 (module docstring)."""
    from realmodel.flow import low_rank_spectrum

    found = []
    for layer in range(weights.n_layers):
        for head in range(weights.n_heads):
            m = weights.head_matrices(layer, head)
            sp = low_rank_spectrum(m["W_O"], m["W_V"])
            if sp.is_real(0) and sp.is_real(1) and sp.real_part(1) > 0:
                found.append((layer, head, sp.gap()))
    return sorted(found, key=lambda item: -item[2])[:count]


def tasks(quick=False):
    """One piece per head (the heads are chosen by the rule when the piece runs)."""
    return [({"rank": k}, 20.0) for k in range(1 if quick else 3)]


def task(rank):
    """Both claims' measurements for the head of this rank in :func:`selected_heads`."""
    from realmodel import load_minilm
    from realmodel.data import pang_lee_polarity
    from realmodel.flow import (
        collapsed,
        deviation_times,
        head_flow,
        layer_tokens,
        reduce,
        switch_bracket,
    )
    from realmodel.tokenizer import encode_ids, load_tokenizer

    weights = load_minilm()
    layer, head, g = selected_heads(weights)[rank]
    with Timer() as timer:
        model, sp = head_flow(weights, layer, head)
        ids = encode_ids(load_tokenizer(), pang_lee_polarity()[0][:N_SENTENCES])
        # the same flow in the invariant subspace span(tokens) + range(W_O^h): k = 98 + 32
        # coordinates instead of 384 (exact, realmodel.flow.reduce)
        model, sp, x0, _ = reduce(model, sp, layer_tokens(weights, ids, layer))
        bracket, tried = switch_bracket(model, sp, x0, 15.0 / g, steps=STEPS)
        clustered = deviation_times(model, sp, collapsed(model, x0, 8.0 / g), KAPPAS, DELTA)
        # raw start: the deviation comes early (T_dev (eps - g) < 1 measured): a short horizon
        raw = deviation_times(model, sp, x0, KAPPAS, DELTA, horizon=3.0)
        rows = [{"kappa": c["kappa"], "eps": c["eps"], "T_dev_clustered": c["T_dev"],
                 "T_dev_raw": r["T_dev"], "product_clustered": c["T_dev"] * (c["eps"] - g),
                 "product_raw": r["T_dev"] * (r["eps"] - g), "late_slope": c["late_slope"]}
                for c, r in zip(clustered, raw)]
    return {"layer": layer, "head": head, "g": g, "lambda": [sp.real_part(0), sp.real_part(1)],
            "tokens": len(x0), "coordinates": x0.shape[1], "bracket": bracket, "tried": tried, "rows": rows,
            "runtime_s": timer.seconds}


def main(out_dir=None, quick=False):
    return combine([(kw, task(**kw)) for kw, _ in tasks(quick)], out_dir, quick)


def combine(pieces, out_dir=None, quick=False):
    heads = [r for _, r in pieces]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for h, marker in zip(heads, "osd^"):
        label = f"layer {h['layer']} head {h['head']} (g = {h['g']:.3f})"
        pts = sorted([(eps / h["g"], s / h["g"]) for eps, s in h["tried"]]
                     + [(r["kappa"], r["late_slope"] / h["g"]) for r in h["rows"]])
        axes[0].plot(*zip(*pts), marker, label=label, alpha=0.8)
        k = [r["kappa"] for r in h["rows"]]
        line, = axes[1].plot(k, [r["product_clustered"] for r in h["rows"]], marker + "-",
                             label=label + ", clustered start")
        axes[1].plot(k, [r["product_raw"] for r in h["rows"]], marker + "--",
                     color=line.get_color(), label="same head, raw hidden states")
    kk = np.linspace(0, 3, 10)
    axes[0].plot(kk, kk - 1, "k--", label="theory: eps - g")
    axes[0].axhline(0, color="0.6", lw=0.8)
    axes[0].set_xlabel("kappa = eps / g")
    axes[0].set_ylabel("late slope of log |P_2 x| / |P_1 x|, over g")
    axes[0].set_title("a real head switches limit at eps = g")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("kappa = eps / g")
    axes[1].set_ylabel(f"T_dev({DELTA:g}) (eps - g)")
    axes[1].set_title("time to deviation x (eps - g)")
    axes[1].legend(fontsize=6)
    fig.tight_layout()
    figure = save(fig, out_dir, NAME)
    records = []
    for h in heads:
        tag = f"L{h['layer']}H{h['head']}"
        width = 3 * h["g"] / 2**STEPS
        params = {"layer": h["layer"], "head": h["head"], "g": h["g"], "beta": 1.0,
                  "tokens": h["tokens"], "sentences": N_SENTENCES, "steps": STEPS}
        bracket = h["bracket"] if h["bracket"] is not None else (np.nan, np.nan)
        records.append(Record(
            case=f"{NAME}_switch_{tag}", claim=f"real head (layer {h['layer']}, head "
            f"{h['head']}): the flow's limit switches at eps = g (bisection bracket of the "
            "late slope's sign change)", measured=bracket, expected=h["g"],
            tolerance=1.5 * width, error_kind="bracket", details=h["tried"], figure=figure,
            runtime_s=h["runtime_s"], parameters=params))
        products = np.array([r["product_clustered"] for r in h["rows"]])
        spread = float(np.max(np.abs(products / products.mean() - 1.0)))
        records.append(Record(
            case=f"{NAME}_tdev_{tag}", claim=f"real head (layer {h['layer']}, head "
            f"{h['head']}), clustered start: T_dev (eps - g) constant over kappa in "
            f"{list(KAPPAS)} (max relative deviation from the mean)", measured=spread,
            expected=0.0, tolerance=0.10, error_kind="value", details=h["rows"],
            figure=figure, runtime_s=0.0, parameters=params))
    return [dataclasses.replace(r) for r in records]


if __name__ == "__main__":
    for r in main():
        print(r.case, r.measured, r.passed)
