"""Figures and tables of a forgetting study: phase-diagram heat maps of D = W_2(base,
fine-tuned) over (sweep value, depth T) with the measured T_dev and the Gronwall lower bound,
D(T) along the sweep, and a Markdown table. Nothing here selects a matplotlib backend.
"""

from __future__ import annotations

import numpy as np

from .bounds import deviation_time_lower_bound
from .config import build_models

__all__ = ["theory_curve", "figures", "table"]


def theory_curve(cfg, values):
    """Gronwall lower bound on T_dev(delta) along the sweep axis (in W_1, chordal)."""
    out = []
    for v in values:
        base, tuned = build_models(cfg, v)
        eps = float(np.linalg.norm(tuned.V - base.V, 2))
        out.append(deviation_time_lower_bound(base, eps, cfg["sweep"]["delta"]) if eps > 0
                   else np.inf)
    return np.array(out)


def figures(cfg, values, by_backend, out):
    import matplotlib.pyplot as plt

    axis, delta, T = cfg["sweep"]["axis"], cfg["sweep"]["delta"], cfg["time"]["T"]
    bound = theory_curve(cfg, values)
    files = {}
    for k, rs in by_backend.items():
        times = rs[0]["times"]
        D = np.stack([r["deviation_w2"] for r in rs])
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        im = ax.pcolormesh(values, times, D.T, shading="nearest", cmap="viridis")
        fig.colorbar(im, ax=ax, label="D = W_2(base, fine-tuned), geodesic")
        if D.max() > delta > D.min():
            ax.contour(values, times, D.T, levels=[delta], colors="w", linewidths=1.5)
        tdev = [float(r["t_dev"]) for r in rs]
        ax.plot(values, np.where(np.isfinite(tdev), tdev, np.nan), "wo", ms=4,
                label=f"measured T_dev(delta = {delta:g})")
        finite = np.isfinite(bound)
        ax.plot(np.asarray(values)[finite], np.minimum(bound[finite], T), "r--",
                label="Gronwall lower bound on T_dev")
        if cfg["perturbation"]["kind"] == "e2" and cfg["model"]["V_diag"] is not None \
                and axis == "norm":
            vd = sorted(cfg["model"]["V_diag"], reverse=True)
            ax.axvline(vd[0] - vd[1], color="orange", ls=":", lw=2,
                       label=f"spectral gap g = {vd[0] - vd[1]:g}")
        ax.set_xlabel("||Delta||_2" if axis == "norm" else "beta")
        ax.set_ylabel("depth T")
        ax.set_ylim(0, T)
        ax.set_title(f"{cfg['study']['name']}: {k}")
        ax.legend(fontsize=7, loc="upper right")
        path = out / f"phase_{k}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        files[f"phase_{k}"] = str(path)
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, rs in by_backend.items():
        ax.plot(values, [r["deviation_w2"][-1] for r in rs], "o-", label=k)
    ax.set_xlabel("||Delta||_2" if axis == "norm" else "beta")
    ax.set_ylabel(f"D(T = {T:g})")
    ax.legend()
    path = out / "deviation_T.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    files["deviation_T"] = str(path)
    return files


def table(cfg, values, by_backend):
    axis = cfg["sweep"]["axis"]
    kinds = list(by_backend)
    bound = theory_curve(cfg, values)
    head = (f"| {axis} | " + " | ".join(f"D(T) {k}" for k in kinds) + " | "
            + " | ".join(f"T_dev {k}" for k in kinds) + " | Gronwall T_dev bound |")
    lines = [head, "|" + "---|" * (2 + 2 * len(kinds))]
    for i, v in enumerate(values):
        d_t = " | ".join(f"{by_backend[k][i]['deviation_w2'][-1]:.4f}" for k in kinds)
        t_d = " | ".join(f"{float(by_backend[k][i]['t_dev']):.2f}" for k in kinds)
        lines.append(f"| {v:g} | {d_t} | {t_d} | {bound[i]:.3g} |")
    return "\n".join(lines)
