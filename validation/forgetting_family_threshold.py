"""Claim (issue 24, item 6): the LoRA threshold eps_c of the spectral-gap experiment
(V = diag(1, 1-g, ...), Delta = eps e2 e2^T; validation/forgetting_norm_transition.py) with a
causal mask and under pre-LayerNorm (and peri-LN, nGPT), measured on particles, against the
unmasked post-LN control.

Prediction, and what would refute it: eps_c = g for all three. Once the tokens have clustered,
a cluster moves like a Dirac: under a causal mask a token of a cluster sees its prefix, the same
cluster, so x' = P^perp (V + Delta) x as without the mask; under pre-LN theta' =
P^perp (V + Delta) theta / r, the same flow slowed by r ~ t, so the log-ratio s(t) of the
e2 and e1 components moves at the rate (eps - g)/r and its sign still decides (peri-LN and
nGPT divide by r |u| and |u| instead: the same sign). A bracket
excluding g (widened by one width) for any seed refutes it. Pre-LN reaches the clustered regime
later (its angular time grows like log t), so its horizon (and peri-LN's) is T = 10^4 (at T = 10^3, two of three
seeds on S^1 gave eps_c ~ 0.17: the trend test was read before the clusters formed).
SA, beta = 1, N = 100 iid uniform tokens (the row order is the causal position), DOP853
rtol 1e-8, g = 0.2, d in {2, 3}, seeds 0, 1, 2, 8 bisection steps on [0.3 g, 1.9 g] (bracket
width 0.0013). Runtime: about 15 s (45 s under load).
"""

from __future__ import annotations

import numpy as np

from validation.forgetting_norm_transition import critical_eps
from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "forgetting_family_threshold"
VARIANTS = {"post (control)": {}, "causal": {"causal": True},
            "pre-LN": {"norm": "pre", "T": 1e4}, "peri-LN": {"norm": "peri", "T": 1e4},
            "nGPT": {"norm": "ngpt"}}


def main(out_dir=None, quick=False, dims=(2, 3), g=0.2, seeds=(0, 1, 2), steps=8):
    records, rows = [], []
    for d in dims:
        for name, kw in VARIANTS.items():
            with Timer() as timer:
                brackets = [critical_eps(d, g, steps=steps, seed=seed, **kw) for seed in seeds]
            width = brackets[0][1] - brackets[0][0]
            lo = min(b[0] for b in brackets) - width
            hi = max(b[1] for b in brackets) + width
            rows.append((d, name, brackets))
            records.append(Record(
                case=f"{NAME}_d{d}_{name.split()[0].lower()}", claim=f"eps_c = g on S^{d - 1}, {name} "
                f"(union of the {len(seeds)} seeds' brackets, widened by one width)",
                measured=(lo, hi), expected=g, tolerance=0.0, error_kind="bracket",
                details=[{"seed": s, "lo": b[0], "hi": b[1]} for s, b in zip(seeds, brackets)],
                runtime_s=timer.seconds, parameters={"d": d, "g": g, "variant": name,
                                                     "N": 100, "beta": 1.0, **kw}))
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, (d, name, brackets) in enumerate(rows):
        for j, (lo, hi) in enumerate(brackets):
            ax.plot([k + 0.1 * (j - 1)] * 2, [lo, hi], "o-", color=f"C{j}",
                    label=f"seed {seeds[j]}" if k == 0 else None)
    ax.axhline(g, color="k", ls="--", label="g (prediction)")
    ax.set_xticks(range(len(rows)), [f"S^{d - 1}\n{name}" for d, name, _ in rows], fontsize=8)
    ax.set_ylabel("eps_c bracket")
    ax.legend(fontsize=8)
    ax.set_title("LoRA threshold with a causal mask and under pre-LN (particles)")
    figure = save(fig, out_dir, NAME)
    return [Record(**{**r.__dict__, "figure": figure}) for r in records]


if __name__ == "__main__":
    for r in main():
        print(r.case, r.measured, r.passed)
