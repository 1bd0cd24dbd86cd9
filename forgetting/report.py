"""Figures and tables of a forgetting study: phase-diagram heat maps of D = W_2(base,
fine-tuned) over (sweep value, depth T) with the measured T_dev and the Gronwall lower bound,
D(T) along the sweep, and a Markdown table. Nothing here selects a matplotlib backend.
"""

from __future__ import annotations

import logging

import numpy as np

from .bounds import deviation_time_lower_bound
from .config import build_models

__all__ = ["theory_curve", "figures", "table"]

logger = logging.getLogger(__name__)


def theory_curve(cfg, values):
    """Gronwall lower bound on T_dev(delta) along the sweep axis (in W_1, chordal)."""
    out = []
    for v in values:  # the forcing covers a change of Q, K or V (inf: the models agree)
        base, tuned = build_models(cfg, v)
        out.append(deviation_time_lower_bound(base, tuned, cfg["sweep"]["delta"]))
    return np.array(out)


def figures(cfg, values, by_backend, out):
    """Phase diagram per backend (``phase_<backend>.png``) and D(T) along the sweep
    (``deviation_T.png``); returns {name: path} of the figures drawn.

    A figure that fails is logged (a warning with the error) and left out: the study's data
    (``study.nc``, ``table.md``) never depends on plotting. The delta contour needs a grid of
    at least 2 x 2 (two sweep values and two saved times); with one value it is left out."""
    files = {}
    for k, rs in by_backend.items():
        _draw(files, f"phase_{k}", out, lambda ax, fig, k=k, rs=rs:
              _phase(ax, fig, cfg, values, k, rs), figsize=(6.5, 4.5))

    def deviation_at_T(ax, fig):
        for k, rs in by_backend.items():
            ax.plot(values, [r["deviation_w2"][-1] for r in rs], "o-", label=k)
        ax.set_xlabel("||Delta||_2" if cfg["sweep"]["axis"] == "norm" else "beta")
        ax.set_ylabel(f"D(T = {cfg['time']['T']:g})")
        ax.legend()

    _draw(files, "deviation_T", out, deviation_at_T, figsize=(6, 4))
    return files


def _draw(files, name, out, draw, figsize):
    """Draw one figure into ``out/<name>.png`` and record it in ``files``; on any error log a
    warning and go on (plotting never loses a study's data)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    try:
        draw(ax, fig)
        path = out / f"{name}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        files[name] = str(path)
    except Exception as err:  # noqa: BLE001 - any plotting failure: report, keep the data
        logger.warning("figure %s not drawn (%s: %s); the data files are complete", name,
                       type(err).__name__, err)
    finally:
        plt.close(fig)


def _phase(ax, fig, cfg, values, k, rs):
    axis, delta, T = cfg["sweep"]["axis"], cfg["sweep"]["delta"], cfg["time"]["T"]
    bound = theory_curve(cfg, values)
    times = rs[0]["times"]
    D = np.stack([r["deviation_w2"] for r in rs])
    im = ax.pcolormesh(values, times, D.T, shading="nearest", cmap="viridis")
    fig.colorbar(im, ax=ax, label="D = W_2(base, fine-tuned), geodesic")
    if D.shape[0] >= 2 and D.shape[1] >= 2 and D.max() > delta > D.min():
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
