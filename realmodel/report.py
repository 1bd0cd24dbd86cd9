"""The real-model study's outputs: ``record.json`` (every stage's result), ``table.md`` and the
figures, written after the stages (data first, so a plotting failure loses nothing)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

__all__ = ["write_report", "write_json", "plain", "FIGURES"]

logger = logging.getLogger(__name__)

#: figure file -> what it shows (the README's table maps each to its command)
FIGURES = {
    "ov_gaps.png": "spectral gap of every head's OV circuit, by layer (stage spectra)",
    "train_loss.png": "contrastive loss per LoRA step (stage train)",
    "lora_eigenvalues.png": "top eigenvalues of (alpha/r) B A per checkpoint and layer",
    "forgetting_probes.png": "forgetting probes against the update's norm (scalings, control)",
    "probes_by_step.png": "forgetting probes and last-layer deviation along the training",
    "layer_deviation.png": "deviation of held-out token clouds against depth, per variant",
    "head_rotations.png": "top OV-mode rotation against ||Delta_h|| / g_h, first order, flips",
    "ov_spectra.png": "eigenvalues of every head's W_V^h W_O^h before and after the update",
    "head_flow.png": "the flow of real heads: switch at eps = g, T_dev (eps - g)",
}


def write_json(path: Path, data) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=plain))
    os.replace(tmp, path)  # atomic: a reader sees the old file or the complete new one


def plain(value):
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, complex):
        return [value.real, value.imag]
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return str(path)


def _mean_norm(variant) -> float:
    """Mean spectral norm of the variant's dense updates over the adapted matrices."""
    return float(np.mean(list(variant["spectral_norms"].values())))


def _interval(ci) -> str:
    return f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"


#: probe columns of the table and figures
TABLE_PROBES = ("simlex999", "wordsim353", "lee_pearson", "retrieval_mrr")


def _first_record(analyse, name):
    """The first seed's record of a summary row (for norms, deviation, flips)."""
    if name == "base":
        return None
    if name.startswith("step_"):
        return next(r for r in analyse["checkpoints"] if f"step_{r['step']}" == name)
    return analyse["variants"][name]


def table(results) -> str:
    """Markdown table: one row per summarised variant (mean over replicates, bootstrap
    interval), the chance and ceiling rows, and the flow's headline numbers."""
    lines = []
    analyse = results.get("analyse")
    if analyse:
        level = analyse.get("level", 0.95)
        lines += [f"Probes: mean over replicates (seeds; seeds x draws for the control) "
                  f"[{level:.0%} bootstrap interval over replicates and items]. Task: "
                  f"held-out polarity accuracy (nearest centroid). Collapse: held-out Lee "
                  f"document embeddings (mean cosine 1 and effective rank 1: all on one "
                  f"direction).", "",
                  "| variant | replicates | mean norm(Delta)_2 | SimLex rho | WordSim rho | "
                  "Lee r | QA MRR | task accuracy | mean cosine | effective rank | "
                  "W_2 last layer | heads flipped |", "|" + "---|" * 12]
        for name, row in analyse["summary"].items():
            rec = _first_record(analyse, name)
            p, c = row["probes"], row["collapse"]
            flips = ("-" if rec is None else
                     f"{sum(bool(r['flipped']) for r in rec['head_rotations'])} / "
                     f"{len(rec['head_rotations'])}")
            lines.append(f"| {name} | {row['n_replicates']} | "
                         f"{0 if rec is None else _mean_norm(rec):.3g} | "
                         + " | ".join(_interval(p[k]) for k in TABLE_PROBES)
                         + f" | {_interval(row['task'])} | "
                         f"{c['lee_documents.mean_cosine']['mean']:.3f} | "
                         f"{c['lee_documents.effective_rank']['mean']:.1f} | "
                         f"{0 if rec is None else rec['probes']['deviation']['w2'][-1]:.4f} | "
                         f"{flips} |")
        ch, ce = analyse["chance"], analyse["ceiling"]
        task = analyse["summary"]["base"]["task"]
        lines.append("| chance | | | " + " | ".join(f"{ch[k]:.3f}" for k in TABLE_PROBES)
                     + f" | {task['chance']:.3f} | | | | |")
        lines.append("| ceiling | | | " + " | ".join(f"{ce[k]:.3f}" for k in TABLE_PROBES)
                     + f" | {task['ceiling']:.3f} | | | | |")
        qa = analyse["qa"]
        lines += ["", f"QA: {qa['queries']} queries, {qa['candidates']} candidates (chance "
                  f"H_m/m = {qa['chance']:.4f}); {qa['multi_answer_queries']} queries share "
                  f"their question with another answer, so the tie-free ceiling is "
                  f"{qa['ceiling']:.4f}."]
    flow = results.get("flow")
    if flow:
        lines += ["", "| head | g | switch bracket | T_dev (eps - g), clustered start "
                  "(min - max over kappa) |", "|---|---|---|---|"]
        for h in flow["heads"]:
            prods = [r["product_clustered"] for r in h["rows"]]
            br = h["bracket"]
            lines.append(f"| layer {h['layer']} head {h['head']} | {h['g']:.4f} | "
                         + (f"[{br[0]:.4f}, {br[1]:.4f}]" if br else "no switch") + " | "
                         f"{min(prods):.4f} - {max(prods):.4f} |")
    return "\n".join(lines)


def figures(results, out: Path) -> dict:
    import matplotlib.pyplot as plt

    from .figures import head_flow_figure

    files = {}
    if "spectra" in results:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        gaps = results["spectra"]["heads"]
        for key, v in gaps.items():
            layer = int(key.split(".")[0])
            n_heads = 1 + max(int(k.split(".")[1]) for k in gaps)
            ax.plot(layer + 0.6 * (int(key.split(".")[1]) / max(n_heads - 1, 1) - 0.5),
                    v["gap"], "o", color="C0", ms=4)
        ax.set_xlabel("layer (heads side by side)")
        ax.set_ylabel("gap g_h of W_V^h W_O^h")
        files["ov_gaps.png"] = _save(fig, out / "ov_gaps.png")
    if "train" in results:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        ax.plot(np.arange(1, len(results["train"]["losses"]) + 1), results["train"]["losses"])
        ax.set_xlabel("LoRA step")
        ax.set_ylabel("contrastive loss of the batch")
        files["train_loss.png"] = _save(fig, out / "train_loss.png")
    analyse = results.get("analyse")
    if analyse:
        rows = analyse["checkpoints"]
        fig, ax = plt.subplots(figsize=(6, 4))
        keys = sorted(rows[-1]["lora_spectrum"], key=lambda k: int(k.split(".")[0]))
        for i, key in enumerate(keys):
            tops = [abs(complex(r["lora_spectrum"][key]["eigenvalues_re"][0],
                                r["lora_spectrum"][key]["eigenvalues_im"][0])) for r in rows]
            ax.plot([r["step"] for r in rows], tops, "o-", color=f"C{i}", label=f"layer {key}")
        ax.set_xlabel("checkpoint (step)")
        ax.set_ylabel("|top eigenvalue| of (alpha/r) B A")
        ax.legend(fontsize=7)
        files["lora_eigenvalues.png"] = _save(fig, out / "lora_eigenvalues.png")
        probes = TABLE_PROBES
        summary = analyse["summary"]

        def errorbar(ax, x, names, probe, **kw):
            ci = [summary[n]["probes"][probe] for n in names]
            y = np.array([c["mean"] for c in ci])
            err = np.array([[c["mean"] - c["lo"] for c in ci], [c["hi"] - c["mean"] for c in ci]])
            ax.errorbar(x, y, yerr=np.maximum(err, 0), capsize=2, **kw)

        fig, ax = plt.subplots(figsize=(6, 4))
        steps = [0] + [r["step"] for r in rows]
        for i, probe in enumerate(probes):
            errorbar(ax, steps, ["base"] + [f"step_{r['step']}" for r in rows], probe,
                     fmt="o-", color=f"C{i}", label=probe)
            ax.axhline(analyse["chance"][probe], color=f"C{i}", ls="--", lw=0.7)
        ax.plot(steps, [0] + [r["probes"]["deviation"]["w2"][-1] for r in rows], "k--",
                label="W_2 of held-out tokens, last layer (first seed)")
        ax.set_xlabel("training step (0: base model)")
        ax.set_ylabel("probe [interval] (dashed: chance)")
        ax.legend(fontsize=7)
        files["probes_by_step.png"] = _save(fig, out / "probes_by_step.png")
        vs = analyse["variants"]
        fig, ax = plt.subplots(figsize=(6, 4))
        trained = sorted((k for k in vs if k.startswith("trained")), key=lambda k: _mean_norm(
            vs[k]))
        for i, probe in enumerate(probes):
            errorbar(ax, [_mean_norm(vs[k]) for k in trained], trained, probe, fmt="o-",
                     color=f"C{i}", label=f"{probe} (trained, scaled)")
            if "random_control" in vs:
                errorbar(ax, [_mean_norm(vs["random_control"])], ["random_control"], probe,
                         fmt="x", color=f"C{i}", ms=9)
            ax.axhline(summary["base"]["probes"][probe]["mean"], color=f"C{i}", ls=":", lw=0.8)
            ax.axhline(analyse["chance"][probe], color=f"C{i}", ls="--", lw=0.7)
        ax.set_xscale("log")
        ax.set_xlabel("mean ||Delta||_2 over adapted matrices (x: random control)")
        ax.set_ylabel("probe [interval] (dotted: base, dashed: chance)")
        ax.legend(fontsize=7)
        files["forgetting_probes.png"] = _save(fig, out / "forgetting_probes.png")
        fig, ax = plt.subplots(figsize=(6, 4))
        names = trained + (["random_control"] if "random_control" in vs else [])
        for i, name in enumerate(names):
            dev = vs[name]["probes"]["deviation"]
            ax.plot(range(len(dev["w2"])), dev["w2"], "o-" if name != "random_control" else
                    "x--", color=f"C{i}", label=name)
        ax.set_xlabel("layer output (0: embeddings)")
        ax.set_ylabel("W_2 (geodesic) of held-out token clouds, base vs tuned")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        files["layer_deviation.png"] = _save(fig, out / "layer_deviation.png")
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, name in enumerate(names):
            rot = vs[name]["head_rotations"]
            ratio = np.array([r["ratio"] for r in rot])
            flipped = np.array([bool(r["flipped"]) for r in rot])
            ax.plot(ratio[~flipped], [r["rotation"] for r, f in zip(rot, flipped) if not f],
                    ".", color=f"C{i}", label=name)
            ax.plot(ratio[flipped], [r["rotation"] for r, f in zip(rot, flipped) if f], "*",
                    color=f"C{i}", ms=9)
            ax.plot(ratio, [r["predicted_rotation"] for r in rot], "_", color=f"C{i}")
        ax.axvline(1.0, color="k", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("||Delta_h||_2 / g_h")
        ax.set_ylabel("rotation of the top OV mode (rad); _ first order; * flipped")
        ax.legend(fontsize=7)
        files["head_rotations.png"] = _save(fig, out / "head_rotations.png")
    if analyse and analyse.get("ov_spectra"):
        n_layers = 1 + max(int(key.split(".")[0]) for key in analyse["ov_spectra"])
        n_heads = 1 + max(int(key.split(".")[1]) for key in analyse["ov_spectra"])
        cols = min(3, n_layers)
        rows_ = -(-n_layers // cols)
        fig, axes = plt.subplots(rows_, cols, figsize=(11, 3.25 * rows_), sharex=True,
                                 sharey=True, squeeze=False)
        for key, v in analyse["ov_spectra"].items():
            ax = axes.flat[int(key.split(".")[0])]
            ax.plot(v["eigenvalues_before_re"], v["eigenvalues_before_im"], ".", color="0.6",
                    ms=3)
            ax.plot(v["eigenvalues_after_re"], v["eigenvalues_after_im"], ".", color="C3",
                    ms=3)
        for layer, ax in enumerate(axes.flat):
            if layer >= n_layers:
                ax.set_visible(False)
                continue
            ax.set_title(f"layer {layer}: {n_heads} heads (grey before, red after)",
                         fontsize=8)
            ax.axvline(0, color="k", lw=0.5)
        for ax in axes[-1]:
            ax.set_xlabel("Re lambda of W_V^h W_O^h")
        for ax in axes[:, 0]:
            ax.set_ylabel("Im lambda")
        fig.tight_layout()
        files["ov_spectra.png"] = _save(fig, out / "ov_spectra.png")
    if results.get("flow") and results["flow"]["heads"]:
        files["head_flow.png"] = _save(head_flow_figure(results["flow"]["heads"]),
                                       out / "head_flow.png")
    return files


def write_report(cfg, results, out) -> dict:
    """record.json and table.md first, then the figures (a plotting failure is logged, the
    data stay). Returns {"table", "files"}."""
    out = Path(out)
    record = out / "record.json"
    write_json(record, {"config": cfg, "results": results})
    text = table(results)
    (out / "table.md").write_text(text + "\n")
    files = {"record": str(record), "table": str(out / "table.md")}
    try:
        files.update(figures(results, out))
    except Exception as err:  # noqa: BLE001 - the data are written; say what failed
        logger.error("figures failed (%s: %s); record.json and table.md are complete",
                     type(err).__name__, err)
    return {"table": text, "files": files}


if __name__ == "__main__":  # redraw from a record: python -m realmodel.report OUT_DIR
    import sys

    folder = Path(sys.argv[1])
    data = json.loads((folder / "record.json").read_text())
    print(figures(data["results"], folder))
