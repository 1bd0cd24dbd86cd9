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


#: what a flagged point of each continuum backend means (the table's notes)
FLAG_MEANING = {
    "fv": "a cluster is narrower than a grid cell from that time: its shape is a grid "
          "artefact, its mass and position remain meaningful",
    "spectral": "the spectral tail exceeds the solver's tolerance from that time: errors of "
                "that relative size, densities may undershoot below zero",
    "fem": "the DG solution is no longer resolved by the mesh from that time (its "
           "indicator): cluster shapes are mesh artefacts",
}
#: how the reason of a refinement that did not converge begins (forgetting.study)
REFINEMENT = "resolution = 'auto' did not converge"
#: the marker of a flagged value in table.md
MARK = " (!)"


def _order(values, by_backend):
    """Sweep values in increasing order and the results in the same order: the figures need a
    monotone axis whatever order they are given in."""
    order = np.argsort(np.asarray(values, dtype=float), kind="stable")
    return np.asarray(values, dtype=float)[order], \
        {k: [rs[i] for i in order] for k, rs in by_backend.items()}


def _flag_time(r) -> float:
    return float(r.get("flagged_from", np.inf))


def figures(cfg, values, by_backend, out):
    """Phase diagram per backend (``phase_<backend>.png``) and D(T) along the sweep
    (``deviation_T.png``); returns {name: path} of the figures drawn.

    Flagged points (``flagged_from`` finite: under-resolved, or resolution = "auto" not
    converged) are marked: the phase map hatches their cells at t >= the flag time, the D(T)
    plot circles them in red; the legends say so. Error estimates of resolution = "auto" are
    error bars on D(T). A figure that fails is logged (a warning with the error) and left out:
    the study's data (``study.nc``, ``table.md``) never depends on plotting. The delta contour
    needs a grid of at least 2 x 2 (two sweep values and two saved times); with one value it
    is left out."""
    values, by_backend = _order(values, by_backend)
    files = {}
    for k, rs in by_backend.items():
        _draw(files, f"phase_{k}", out, lambda ax, fig, k=k, rs=rs:
              _phase(ax, fig, cfg, values, k, rs), figsize=(6.5, 4.5))

    def deviation_at_T(ax, fig):
        T = cfg["time"]["T"]
        labelled = False
        for k, rs in by_backend.items():
            D = np.array([r["deviation_w2"][-1] for r in rs])
            err = np.array([r.get("error_w2", [np.nan])[-1] for r in rs])
            line, = ax.plot(values, D, "o-", label=k)
            if np.any(np.isfinite(err)):
                ax.errorbar(values, D, yerr=np.where(np.isfinite(err), err, 0), fmt="none",
                            ecolor=line.get_color(), capsize=3)
            bad = np.array([_flag_time(r) <= T for r in rs])
            if bad.any():
                ax.plot(values[bad], D[bad], "o", ms=11, mfc="none", mec="red", mew=1.5,
                        label=None if labelled else "flagged: under-resolved at T")
                labelled = True
        ax.set_xlabel("||Delta||_2" if cfg["sweep"]["axis"] == "norm" else "beta")
        ax.set_ylabel(f"D(T = {T:g})")
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


def _edges(centres):
    """Cell edges around sorted centres (midpoints; the end cells as wide as their neighbour,
    a lone centre 1 wide)."""
    c = np.asarray(centres, dtype=float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def _phase(ax, fig, cfg, values, k, rs):
    from matplotlib.patches import Patch, Rectangle

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
    x_edges, t_edges = _edges(values), _edges(times)
    hatched = False
    for i, r in enumerate(rs):  # the cells at saved times t >= the point's flag time
        late = np.nonzero(np.asarray(times) >= _flag_time(r))[0]
        if late.size:
            ax.add_patch(Rectangle((x_edges[i], t_edges[late[0]]), x_edges[i + 1] - x_edges[i],
                                   t_edges[-1] - t_edges[late[0]], fill=False, hatch="xx",
                                   edgecolor="red", lw=0))
            hatched = True
    handles, _ = ax.get_legend_handles_labels()
    if hatched:
        handles.append(Patch(fill=False, hatch="xx", edgecolor="red",
                             label="under-resolved: t >= the point's flag time"))
    ax.set_xlabel("||Delta||_2" if axis == "norm" else "beta")
    ax.set_ylabel("depth T")
    ax.set_ylim(0, T)
    ax.set_title(f"{cfg['study']['name']}: {k}")
    ax.legend(handles=handles, fontsize=7, loc="upper right")


def _cell(value: float, error: float, digits: int, flagged: bool) -> str:
    """``value`` [+- error] [(!)]: no error shown when there is no estimate (NaN: a fixed
    resolution) or the value is infinite (T_dev never reached at either level); an infinite
    estimate (the changes between levels did not shrink) is shown as such."""
    text = f"{value:.{digits}f}"
    if not np.isnan(error) and np.isfinite(value):
        text += f" +- {error:.2g}"
    return text + (MARK if flagged else "")


def table(cfg, values, by_backend):
    """The study's Markdown table: D(T) and T_dev per backend along the sweep, with the
    Gronwall bound on T_dev; values of resolution = "auto" as value +- error estimate.

    A flagged point (``flagged_from`` finite) is marked ``(!)`` on D(T), and on T_dev unless
    T_dev was reached before the flag time (then it is a resolved value); a note below the
    table says, per flagged point, from which t and why, and what a flag of that backend
    means."""
    axis, T = cfg["sweep"]["axis"], cfg["time"]["T"]
    kinds = list(by_backend)
    bound = theory_curve(cfg, values)
    head = (f"| {axis} | " + " | ".join(f"D(T = {T:g}) {k}" for k in kinds) + " | "
            + " | ".join(f"T_dev {k}" for k in kinds) + " | Gronwall T_dev bound |")
    lines = [head, "|" + "---|" * (2 + 2 * len(kinds))]
    notes = []
    for i, v in enumerate(values):
        cells = {"D": [], "T": []}
        for k in kinds:
            r = by_backend[k][i]
            since, t_dev = _flag_time(r), float(r["t_dev"])
            cells["D"].append(_cell(r["deviation_w2"][-1], r.get("error_w2", [np.nan])[-1],
                                    4, since <= T))
            cells["T"].append(_cell(t_dev, float(r.get("error_t_dev", np.nan)), 2,
                                    since <= T and not t_dev < since))
            if since <= T:
                notes.append(f"- {k}, {axis} = {v:g}: from t = {since:g}: "
                             f"{r.get('flag_reason', '')}")
        lines.append(f"| {v:g} | {' | '.join(cells['D'])} | {' | '.join(cells['T'])} | "
                     f"{bound[i]:.3g} |")
    if notes:
        lines += ["", f"{MARK.strip()} flagged: the value depends on saved times from which the "
                  "run is not resolved (a T_dev reached before that time is resolved and "
                  "unmarked):", *notes]
        for k in kinds:  # what the solver's own flag means (not a refinement's verdict)
            if k in FLAG_MEANING and any(np.isfinite(_flag_time(r)) and not str(
                    r.get("flag_reason", "")).startswith(REFINEMENT) for r in by_backend[k]):
                lines.append(f"- what a flag of {k} means: {FLAG_MEANING[k]}"
                             + ("; the particles column cross-checks it" if "particles" in kinds
                                else ""))
        if cfg["backend"].get("allow_unresolved"):
            lines.append("- kept on purpose: [backend] allow_unresolved = true")
        else:
            lines.append("- remedy: a higher backend.resolution, resolution = \"auto\", or "
                         "[backend] allow_unresolved = true to accept the flagged values")
    if cfg["backend"].get("resolution") == "auto":
        lines += ["", f"+- : error estimate of resolution = \"auto\" (tol "
                  f"{cfg['backend']['tol']:g}; study.nc: error_w2_*, error_t_dev_*)"]
    return "\n".join(lines)
