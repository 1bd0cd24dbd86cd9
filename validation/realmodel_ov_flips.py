"""Claim (issue 12): under a LoRA update of W_V, the top mode of a head's OV circuit can change
(flip) only when the update is large against the head's spectral gap.

Setting: all-MiniLM-L6-v2, LoRA on W_V of every layer (rank 2, alpha 32, the published
setting), trained for 60 steps on the contrastive polarity task (``realmodel.train``, the first
160 Pang-Lee sentences); update variants: the trained update scaled by s in {1/256, 1/64, 1/16,
1/4, 1/2, 1, 2, 4, 8} and a random control with the same singular values per layer. For every
head h (72) and variant, with M_h = W_V^h W_O^h and Delta_h its change
(``realmodel.observables.head_rotations``, modes followed along M_h + t Delta_h, t in [0, 1]):
the ratio ||Delta_h||_2 / g_h and whether the top mode flipped.

The theorem asserted (Bauer-Fike): every eigenvalue of M + Delta lies within
kappa ||Delta||_2 of an eigenvalue of M, kappa = cond(S) of M's eigenvector matrix S (columns of
unit norm). If kappa ||Delta||_2 < g / 2, the disc around the top mode is disjoint from the
others along the whole path t Delta, its continuation keeps a real part above
Re lambda_1 - g / 2 and every other eigenvalue stays below Re lambda_2 + g / 2 = Re lambda_1 -
g / 2: no flip. Pass: no flip with 2 kappa_h ||Delta_h||_2 / g_h < 1 (count 0), and at least
one (head, variant) pair in that range (else the claim is vacuous and the record fails).

Reported, not asserted: the flip rate in bins of ||Delta_h||_2 / g_h (the issue asks for the count
below 1 whatever it is: for non-normal M_h, kappa_h > 1 and the theorem allows flips below 1).
Runtime: 124 s on one core alone, 202 s in the full parallel run (training and the rotations
of 720 (head, update) pairs).
"""

from __future__ import annotations

import numpy as np

from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "realmodel_ov_flips"
#: scalings of the trained update: the small ones put heads under the Bauer-Fike bound (the
#: trained update itself is large against most gaps), the large ones far above it
SCALES = (1 / 256, 1 / 64, 1 / 16, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
BINS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, np.inf)
STEPS = 60


def eigenvector_condition(M) -> float:
    """cond_2 of the eigenvector matrix of M with unit columns (Bauer-Fike's kappa)."""
    _, S = np.linalg.eig(np.asarray(M, dtype=np.float64))
    return float(np.linalg.cond(S / np.linalg.norm(S, axis=0)))


def main(out_dir=None, quick=False):
    import tempfile

    from realmodel import load_minilm
    from realmodel.data import pang_lee_polarity
    from realmodel.lora import LoraConfig, random_control, scale_lora
    from realmodel.observables import head_rotations
    from realmodel.spectra import ov_matrix
    from realmodel.tokenizer import encode_ids, load_tokenizer
    from realmodel.train import TrainConfig, train_lora

    with Timer() as timer:
        weights = load_minilm()
        sentences, labels = pang_lee_polarity()
        ids = encode_ids(load_tokenizer(), sentences[:160])
        config = LoraConfig(rank=2, alpha=32.0, layers=tuple(range(weights.n_layers)))
        steps = 10 if quick else STEPS
        with tempfile.TemporaryDirectory() as tmp:
            trained = train_lora(weights, ids, np.asarray(labels[:160]), config,
                                 TrainConfig(steps=steps, batch_size=16),
                                 checkpoint=f"{tmp}/ck.npz").lora
        variants = {f"trained_s{s:g}": scale_lora(trained, s) for s in SCALES}
        variants["random_control"] = random_control(trained, config, seed=1)
        kappa = {(layer, head): eigenvector_condition(ov_matrix(weights, layer, head))
                 for layer in range(weights.n_layers) for head in range(weights.n_heads)}
        rows = []
        for name, lora in variants.items():
            for r in head_rotations(weights, lora, config):
                k = kappa[r["layer"], r["head"]]
                rows.append({"variant": name, "layer": r["layer"], "head": r["head"],
                             "ratio": r["ratio"], "kappa": k, "flipped": bool(r["flipped"]),
                             "bauer_fike": 2 * k * r["ratio"]})
    ratio = np.array([r["ratio"] for r in rows])
    flipped = np.array([r["flipped"] for r in rows])
    bins = []
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        sel = (ratio >= lo) & (ratio < hi)
        bins.append({"ratio_from": lo, "ratio_to": hi, "heads": int(sel.sum()),
                     "flips": int(flipped[sel].sum()),
                     "rate": float(flipped[sel].mean()) if sel.any() else float("nan")})
    protected = np.array([r["bauer_fike"] < 1 for r in rows])
    below_one = int(flipped[ratio < 1].sum())
    fig, ax = plt.subplots(figsize=(6, 4))
    mids = [f"[{b['ratio_from']:g}, {b['ratio_to']:g})" for b in bins]
    ax.bar(mids, [b["rate"] for b in bins], color="C0")
    for i, b in enumerate(bins):
        ax.text(i, (b["rate"] if np.isfinite(b["rate"]) else 0) + 0.02,
                f"{b['flips']}/{b['heads']}", ha="center", fontsize=7)
    ax.set_xlabel("||Delta_h||_2 / g_h")
    ax.set_ylabel("flip rate of the top OV mode")
    ax.set_title(f"72 heads x {len(variants)} updates (trained x s, random control)",
                 fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    figure = save(fig, out_dir, NAME)
    return Record(case=f"{NAME}_bauer_fike", claim="no flip of a head's top OV mode where "
                  "2 kappa_h norm(Delta_h) < g_h (Bauer-Fike); flips with norm(Delta_h) / g_h "
                  f"< 1: {below_one} of {int((ratio < 1).sum())} (reported)",
                  measured=int(flipped[protected].sum()) if protected.any() else np.inf,
                  expected=0.0, tolerance=0.0,
                  error_kind="value", details=bins, figure=figure, runtime_s=timer.seconds,
                  parameters={"steps": steps, "rank": 2, "alpha": 32.0, "scales": list(SCALES),
                              "protected_pairs": int(protected.sum()),
                              "flips_below_ratio_1": below_one, "pairs": len(rows)})


if __name__ == "__main__":
    print(main())
