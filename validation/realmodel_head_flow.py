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

from validation.plotting import save
from validation.record import Record, Timer

NAME = "realmodel_head_flow"
KAPPAS = (1.25, 1.5, 2.0, 2.5, 3.0)
DELTA, N_SENTENCES, STEPS = 0.3, 4, 6


def tasks(quick=False):
    """One piece per head (the heads are chosen by the rule when the piece runs)."""
    return [({"rank": k}, 20.0) for k in range(1 if quick else 3)]


def task(rank):
    """Both claims' measurements for the head of this rank in
    :func:`realmodel.flow.selected_heads` (:func:`realmodel.flow.measure_head`)."""
    from realmodel import load_minilm
    from realmodel.data import pang_lee_polarity
    from realmodel.flow import measure_head, selected_heads
    from realmodel.tokenizer import encode_ids, load_tokenizer

    weights = load_minilm()
    layer, head, _ = selected_heads(weights)[rank]
    ids = encode_ids(load_tokenizer(), pang_lee_polarity()[0][:N_SENTENCES])
    with Timer() as timer:
        result = measure_head(weights, layer, head, ids, KAPPAS, DELTA, STEPS)
    return dict(result, runtime_s=timer.seconds)


def main(out_dir=None, quick=False):
    return combine([(kw, task(**kw)) for kw, _ in tasks(quick)], out_dir, quick)


def combine(pieces, out_dir=None, quick=False):
    heads = [r for _, r in pieces]
    from realmodel.figures import head_flow_figure

    fig = head_flow_figure(heads)
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
