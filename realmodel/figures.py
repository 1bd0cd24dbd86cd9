"""Figures of the real-model study (matplotlib; no backend is selected here)."""

from __future__ import annotations

import numpy as np

__all__ = ["head_flow_figure"]


def head_flow_figure(heads):
    """Left: the late slope of log(|P_2 x| / |P_1 x|) over g against kappa = eps / g for every
    run of every head (:func:`realmodel.flow.measure_head` results), with the theory eps - g;
    right: T_dev (eps - g) against kappa, clustered start (solid) and raw tokens (dashed).
    Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for h, marker in zip(heads, "osd^v<>"):
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
    delta = heads[0]["delta"] if heads else 0.3
    axes[1].set_xlabel("kappa = eps / g")
    axes[1].set_ylabel(f"T_dev({delta:g}) (eps - g)")
    axes[1].set_title("time to deviation x (eps - g)")
    axes[1].legend(fontsize=6)
    fig.tight_layout()
    return fig
