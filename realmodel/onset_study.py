"""The onset study (issue 23, item 3): where forgetting starts in eps / g, unit by unit. Run
by ``meanfield run STUDY.toml [--quick]`` with ``[study] kind = "onset"``.

Units: the value matrix of one layer (LoRA on W_V of that layer alone; the unit's matrix is
the layer's M = W_V W_O, H x H, whose nonzero spectrum is that of the OV circuit W_O W_V) and
single heads (the head's rows of the same trained update; M_h = W_V^h W_O^h). The gap g is
the unit's own (:func:`realmodel.spectra.spectral_gap`), the size of an update its effect on
the unit's matrix, eps = ||Delta_V W_O||_2 (layer) or ||Delta_V^h W_O^h||_2 (head).

Stages (each result stored atomically with a fingerprint; a re-run recomputes nothing that is
stored):

``train``  one LoRA fine-tuning (``realmodel.train``) per layer that a unit needs, on the
           balanced training split (``onset/train_layer<l>.npz``).
``sweep``  per unit, per x = eps / g of ``sweep.eps_over_g``: the trained direction rescaled
           to eps = x g and ``sweep.random_draws`` random directions with the same singular
           values (Haar frames; a head's confined to its rows), each merged into the weights
           and measured (``onset/<unit>/x<x>_<direction>.json``): the probes item by item, the
           collapse of held-out sentence embeddings, the per-layer W_2 of held-out token
           clouds, the homotopy flip of the unit's top mode
           (:func:`realmodel.observables.top_mode_rotation`) and the criterion
           (:func:`realmodel.criterion.mode_criterion`).
``fit``    per unit and probe, F = (base - probe) / base of the trained direction against x,
           :func:`realmodel.onset.fit_onset` (threshold and power law, AIC, interval of x*,
           verdict); across units :func:`realmodel.onset.onset_slope` of log eps* against
           log g (units with x* > 0); ``onset.json`` in the schema of issue 23.

Refutation, stated before any run: the theory is refuted for a unit if the verdict is "power
law" (forgetting from the smallest eps on), and across units if the slope interval excludes
1 (in particular if it contains 0: eps* independent of g). The random directions are the
control: forgetting that the random directions show as much as the trained one is not
direction-specific.

``--quick`` (tests, under 2 minutes on MiniLM): the overrides of :data:`QUICK` and the output
in ``<output>/quick``.

Config sections and keys (defaults in brackets):

[study]  name (required), kind = "onset" (required), output [meanfield-out/<name>],
         description [""], stages [["train", "sweep", "fit"]]
[model]  path [""] (MiniLM from its wheel), sha256 [""]
[units]  layers ["all"] (or a list), heads [8]: that many heads with a real top mode, evenly
         spread over the sorted gaps from the smallest to the largest
[train]  rank [2], alpha [32.0], steps [120], batch_size [16], learning_rate [1e-3],
         temperature [0.1], seed [0], sentences [160] (even)
[sweep]  eps_over_g [1/16, 1/8, ..., 32], random_draws [5], held_out [20] (even), split_seed [0],
         qa_pairs [300]
[fit]    probe ["lee_pearson"] (the verdict's probe), bootstrap [200], level [0.95]
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path

import numpy as np

from forgetting.config import REQUIRED, ConfigError, fill_schema, read_toml
from forgetting.sweep import FolderLock

from .report import write_json
from .study import replicate_items as _items
from .study import stored as _stored

__all__ = ["load_onset_study", "validate_onset_config", "run_onset_study", "ONSET_SCHEMA",
           "QUICK", "unit_matrix", "unit_update", "choose_heads"]

logger = logging.getLogger(__name__)

STAGES = ("train", "sweep", "fit")
ONSET_SCHEMA = {
    "study": {"name": REQUIRED, "kind": REQUIRED, "output": None, "description": "",
              "stages": list(STAGES)},
    "model": {"path": "", "sha256": ""},
    "units": {"layers": "all", "heads": 8},
    "train": {"rank": 2, "alpha": 32.0, "steps": 120, "batch_size": 16,
              "learning_rate": 1e-3, "temperature": 0.1, "seed": 0, "sentences": 160},
    "sweep": {"eps_over_g": [2.0 ** k for k in range(-4, 6)], "random_draws": 5,
              "held_out": 20, "split_seed": 0, "qa_pairs": 300},
    "fit": {"probe": "lee_pearson", "bootstrap": 200, "level": 0.95},
}
#: the overrides of ``--quick``: one head (the largest gap), four eps, one random draw, a short
#: training, few queries
QUICK = {"units": {"layers": [], "heads": 1},
         "train": {"steps": 4, "batch_size": 8, "sentences": 16},
         "sweep": {"eps_over_g": [0.25, 1.0, 4.0, 16.0], "random_draws": 1, "held_out": 4,
                   "qa_pairs": 30},
         "fit": {"bootstrap": 20}}


def load_onset_study(path, quick: bool = False) -> dict:
    """Read and validate a TOML onset study (``quick``: apply :data:`QUICK`)."""
    return validate_onset_config(read_toml(path), quick=quick)


def _int(value, key, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"'{key}' must be an integer >= {low}, got {value!r}")


def _num(value, key):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ConfigError(f"'{key}' must be a finite number > 0, got {value!r}")


def validate_onset_config(raw: dict, quick: bool = False) -> dict:
    """Fill defaults, apply the quick overrides if asked, check every key against the model's
    structure; ConfigError naming the key."""
    from .probes import PROBE_KEYS
    from .study import model_structure

    cfg = fill_schema(raw, ONSET_SCHEMA)
    if cfg["study"]["kind"] != "onset":
        raise ConfigError(f"'study.kind' must be \"onset\" here, got {cfg['study']['kind']!r}")
    if not isinstance(cfg["study"]["name"], str) or not cfg["study"]["name"]:
        raise ConfigError("'study.name' must be a non-empty string")
    stages = cfg["study"]["stages"]
    if not isinstance(stages, list) or not stages or not set(stages) <= set(STAGES):
        raise ConfigError(f"'study.stages' must be a non-empty list from {STAGES}, got "
                          f"{stages!r}")
    structure = model_structure(cfg["model"])
    n_layers = structure["n_layers"]
    if quick:
        for section, values in QUICK.items():
            cfg[section].update(values)
    layers = cfg["units"]["layers"]
    if layers == "all":
        layers = cfg["units"]["layers"] = list(range(n_layers))
    if not isinstance(layers, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < n_layers
            for v in layers) or len(set(layers)) != len(layers):
        raise ConfigError(f"'units.layers' must be \"all\" or distinct layers in "
                          f"[0, {n_layers - 1}], got {layers!r}")
    _int(cfg["units"]["heads"], "units.heads", 0)
    if not layers and not cfg["units"]["heads"]:  # noqa: SIM102
        raise ConfigError("'units.layers' and 'units.heads': no unit to study")
    t = cfg["train"]
    for key, low in (("rank", 1), ("steps", 1), ("batch_size", 4), ("seed", 0),
                     ("sentences", 4)):
        _int(t[key], f"train.{key}", low)
    for key in ("alpha", "learning_rate", "temperature"):
        _num(t[key], f"train.{key}")
    s = cfg["sweep"]
    x = s["eps_over_g"]
    if not isinstance(x, list) or len(set(x)) < 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v > 0 for v in x):
        raise ConfigError(f"'sweep.eps_over_g' must hold at least 4 distinct numbers > 0, got "
                          f"{x!r}")
    s["eps_over_g"] = sorted(float(v) for v in set(x))
    for key, low in (("random_draws", 0), ("held_out", 2), ("split_seed", 0),
                     ("qa_pairs", 2)):
        _int(s[key], f"sweep.{key}", low)
    for section, key in (("train", "sentences"), ("sweep", "held_out")):
        if cfg[section][key] % 2:
            raise ConfigError(f"'{section}.{key}' must be even (a split balanced over the two "
                              f"labels), got {cfg[section][key]}")
    if t["sentences"] + s["held_out"] > 200:
        raise ConfigError("'train.sentences' + 'sweep.held_out' must be <= 200 (the Pang-Lee "
                          "sentences)")
    f = cfg["fit"]
    if f["probe"] not in PROBE_KEYS:
        raise ConfigError(f"'fit.probe' must be one of {PROBE_KEYS}, got {f['probe']!r}")
    _int(f["bootstrap"], "fit.bootstrap", 10)
    if isinstance(f["level"], bool) or not isinstance(f["level"], float) or not (
            0 < f["level"] < 1):
        raise ConfigError(f"'fit.level' must be a number in (0, 1), got {f['level']!r}")
    out = cfg["study"]["output"] or str(Path("meanfield-out") / cfg["study"]["name"])
    cfg["study"]["output"] = str(Path(out) / "quick") if quick else out
    return cfg


# ----------------------------------------------------------------------------- the units

def unit_matrix(weights, layer: int, head=None) -> np.ndarray:
    """The unit's matrix, float64: W_V^h W_O^h (d_h x d_h) for a head, W_V W_O (H x H) for
    a layer."""
    from .spectra import ov_matrix

    if head is not None:
        return ov_matrix(weights, layer, head)
    lw = weights.layers[layer]
    return np.asarray(lw.W_V, np.float64) @ np.asarray(lw.W_O, np.float64)


def unit_update(weights, delta_V, layer: int, head=None) -> np.ndarray:
    """The change of :func:`unit_matrix` under W_V -> W_V + delta_V (exact: the matrix is
    linear in W_V): delta_V W_O, or its head rows times W_O^h."""
    W_O = np.asarray(weights.layers[layer].W_O, np.float64)
    if head is None:
        return delta_V @ W_O
    d = weights.head_dim
    rows = slice(head * d, (head + 1) * d)
    return delta_V[rows] @ W_O[:, rows]


def choose_heads(weights, layers, count: int) -> list:
    """``count`` (layer, head, g) among the heads of ``layers`` whose top mode is real, evenly
    spread over their gaps sorted from the smallest to the largest (both ends included; one
    head: the largest gap)."""
    from .spectra import mode_indices, ov_spectrum, spectral_gap

    found = []
    for layer in layers:
        for head in range(weights.n_heads):
            lam = ov_spectrum(weights, layer, head)
            if len(mode_indices(lam)[0]) == 1:
                found.append((layer, head, spectral_gap(lam)))
    found.sort(key=lambda item: item[2])
    if count == 0 or not found:
        return []
    if count == 1:  # one head: the largest gap (the clearest onset to look for)
        return [found[-1]]
    picks = np.unique(np.round(np.linspace(0, len(found) - 1, min(count, len(found)))))
    return [found[int(i)] for i in picks]


def _random_update(delta_V, head, d, rng) -> np.ndarray:
    """A random matrix with the singular values of delta_V (its head rows for a head), Haar
    frames, confined to the same rows."""
    from .lora import haar_frame

    block = delta_V if head is None else delta_V[head * d:(head + 1) * d]
    u, sigma, vt = np.linalg.svd(block, full_matrices=False)
    r = int(np.sum(sigma > sigma[0] * 1e-10)) if sigma[0] > 0 else 1
    out = np.zeros_like(delta_V)
    piece = (haar_frame(rng, block.shape[0], r) * sigma[:r]) @ haar_frame(
        rng, block.shape[1], r).T
    if head is None:
        return piece
    out[head * d:(head + 1) * d] = piece
    return out


# ----------------------------------------------------------------------------- storage

def _fingerprint(cfg, measured=False) -> str:
    """Fingerprint of what a trained update (and, with ``measured``, one model's record)
    depends on: the model, the training, the split (and the queries). Not the eps grid or
    the number of draws: each (x, direction) is a file of its own, and draw k is the same
    whatever their number."""
    keys = ("held_out", "split_seed") + (("qa_pairs",) if measured else ())
    text = json.dumps({"model": cfg["model"], "train": cfg["train"],
                       "split": {k: cfg["sweep"][k] for k in keys}}, sort_keys=True,
                      default=float)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _unit_name(layer, head) -> str:
    return f"layer {layer}" if head is None else f"layer {layer} head {head}"


def _unit_folder(layer, head) -> str:
    return f"layer{layer}" if head is None else f"layer{layer}_head{head}"


# ----------------------------------------------------------------------------- stages

def units(ctx) -> list:
    """(layer, head or None) of every unit: the configured layers, then the chosen heads."""
    u = ctx.cfg["units"]
    layers = list(range(ctx.weights.n_layers))
    heads = choose_heads(ctx.weights, layers, u["heads"])
    return [(layer, None) for layer in u["layers"]] + [(lay, h) for lay, h, _ in heads]


def stage_train(ctx) -> dict:
    """One LoRA fine-tuning of W_V per layer that a unit needs; the dense update stored."""
    from .lora import LoraConfig, dense_updates
    from .train import TrainConfig, train_lora

    t = ctx.cfg["train"]
    fp = _fingerprint(ctx.cfg)
    folder = ctx.out / "onset"
    folder.mkdir(parents=True, exist_ok=True)
    ids, labels = ctx.rows("train")
    out = {}
    for layer in sorted({lay for lay, _ in units(ctx)}):
        meta = folder / f"train_layer{layer}.json"
        done = _stored(meta, fp)
        if done is None or not (folder / f"train_layer{layer}.npy").exists():
            config = LoraConfig(rank=t["rank"], alpha=t["alpha"], layers=(layer,),
                                targets=("V",))
            result = train_lora(ctx.weights, ids, labels, config, TrainConfig(
                steps=t["steps"], batch_size=t["batch_size"], learning_rate=t["learning_rate"],
                temperature=t["temperature"], seed=t["seed"], checkpoint_every=t["steps"]))
            tmp = folder / f"train_layer{layer}.tmp.npy"
            np.save(tmp, dense_updates(result.lora, config)[f"{layer}.V"])
            tmp.replace(folder / f"train_layer{layer}.npy")
            write_json(meta, {"fingerprint": fp, "layer": layer, "losses": result.losses})
            done = json.loads(meta.read_text())
            logger.info("[train] layer %d: loss %.4f -> %.4f", layer, done["losses"][0],
                        done["losses"][-1])
        out[str(layer)] = done
    return out


def _measure(ctx, delta_V, layer, head, M, qa) -> dict:
    """Everything measured on the model with W_V -> W_V + delta_V in ``layer``."""
    from .collapse import collapse
    from .criterion import mode_criterion
    from .numpy_model import encode
    from .observables import layer_deviation, top_mode_rotation
    from .probes import probe_items, probe_values

    W_V = ctx.weights.layers[layer].W_V
    tuned = ctx.weights.replace_layer(layer, W_V=(np.asarray(W_V, np.float64)
                                                  + delta_V).astype(W_V.dtype))
    D = unit_update(ctx.weights, delta_V, layer, head)
    held, _ = ctx.rows("held")
    items = probe_items(tuned, n_pairs=qa)
    crit = mode_criterion(M, D)
    return {"eps": float(np.linalg.norm(D, 2)), "probes": probe_values(items),
            "items": {key: (v["reciprocal_rank"] if key == "retrieval" else v["model"])
                      for key, v in items.items()},
            "collapse": collapse(encode(tuned, held)),
            "w2": layer_deviation(ctx.weights, tuned, held)["w2"],
            "flipped": bool(top_mode_rotation(M, D)["flipped"]),
            "criterion": {k: crit[k] for k in ("a", "b", "c", "E", "margin", "kept")}}


def stage_sweep(ctx) -> dict:
    """Per unit and x = eps / g: the trained direction and the random draws (module
    docstring), stored one model per file."""
    from .spectra import spectral_gap

    s = ctx.cfg["sweep"]
    fp = _fingerprint(ctx.cfg, measured=True)
    d = ctx.weights.head_dim
    out = {}
    for layer, head in units(ctx):
        trained = np.load(ctx.out / "onset" / f"train_layer{layer}.npy")
        if head is not None:  # the head's rows of the layer's trained update
            confined = np.zeros_like(trained)
            confined[head * d:(head + 1) * d] = trained[head * d:(head + 1) * d]
            trained = confined
        M = unit_matrix(ctx.weights, layer, head)
        g = spectral_gap(np.linalg.eigvals(M))
        eps1 = float(np.linalg.norm(unit_update(ctx.weights, trained, layer, head), 2))
        rng = np.random.default_rng([s["split_seed"], layer, 0 if head is None else head + 1])
        draws = [_random_update(trained, head, d, rng) for _ in range(s["random_draws"])]
        folder = ctx.out / "onset" / _unit_folder(layer, head)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for x in s["eps_over_g"]:
            scale = x * g / eps1
            row = {}
            for name, direction in [("trained", trained)] + [
                    (f"random{k}", r) for k, r in enumerate(draws)]:
                path = folder / f"x{x:g}_{name}.json"
                done = _stored(path, fp)
                if done is None:
                    logger.info("[sweep] %s x = %g %s", _unit_name(layer, head), x, name)
                    write_json(path, {"fingerprint": fp, "x": x, "scale": scale, **_measure(
                        ctx, scale * direction, layer, head, M, s["qa_pairs"])})
                    done = json.loads(path.read_text())
                row[name] = done
            rows.append(row)
        out[_unit_name(layer, head)] = {"layer": layer, "head": head, "gap": g,
                                        "eps_trained_scale1": eps1, "rows": rows}
    return out


def stage_fit(ctx, sweep) -> dict:
    """Both fits per unit and probe, the verdict, the slope across units: onset.json."""
    from .probes import PROBE_KEYS, bootstrap_probes, probe_chance, probe_items, probe_values
    from .onset import fit_onset, onset_slope

    f, s = ctx.cfg["fit"], ctx.cfg["sweep"]
    qa = s["qa_pairs"]
    reference = probe_items(ctx.weights, n_pairs=qa)
    base = probe_values(reference)
    chance = probe_chance(qa)
    out_units = []
    for name, unit in sweep.items():
        rows, g = unit["rows"], unit["gap"]
        x = np.array([r["trained"]["x"] for r in rows])
        probes, fits = {}, {}
        for p in PROBE_KEYS:
            trained = [bootstrap_probes([_items(r["trained"], reference)], n_boot=f["bootstrap"],
                                        level=f["level"], n_pairs=qa)[p] for r in rows]
            entry = {k: [t[k] for t in trained] for k in ("mean", "lo", "hi")}
            randoms = [[_items(v, reference) for k, v in r.items() if k != "trained"]
                       for r in rows]
            if randoms[0]:
                rnd = [bootstrap_probes(rr, n_boot=f["bootstrap"], level=f["level"],
                                        n_pairs=qa)[p] for rr in randoms]
                entry["random"] = {k: [t[k] for t in rnd] for k in ("mean", "lo", "hi")}
            probes[p] = {**entry, "chance": chance[p], "base": base[p]}
            F = (base[p] - np.array(entry["mean"])) / base[p]
            fits[p] = fit_onset(x, F, n_boot=f["bootstrap"], level=f["level"])
        main = fits[f["probe"]]
        thr = main["threshold"]
        tr = [r["trained"] for r in rows]
        out_units.append({
            "unit": name, "layer": unit["layer"], "head": unit["head"], "gap": g,
            "eps": (x * g).tolist(), "eps_over_g": x.tolist(), "probes": probes,
            "collapse": {k: [r["collapse"][k] for r in tr]
                         for k in ("mean_cosine", "effective_rank")},
            "w2_last_layer": [r["w2"][-1] for r in tr], "flipped": [r["flipped"] for r in tr],
            "criterion": {k: [r["criterion"][k] for r in tr] for k in ("a", "b", "E", "kept")},
            "fit": {"probe": f["probe"],
                    "threshold": {"eps_star": thr["x_star"] * g, "lo": thr["lo"] * g,
                                  "hi": thr["hi"] * g, "aic": thr["aic"], "p": thr["p"]},
                    "power": {"aic": main["power"]["aic"], "p": main["power"]["p"]},
                    "delta_aic": main["delta_aic"]},
            "fits": fits, "verdict": main["verdict"]})
    usable = [u for u in out_units if u["fit"]["threshold"]["eps_star"] > 0]
    slope = None
    if len({u["gap"] for u in usable}) >= 3:
        slope = onset_slope([u["gap"] for u in usable],
                            [u["fit"]["threshold"]["eps_star"] for u in usable],
                            n_boot=max(f["bootstrap"], 100), level=f["level"])
    result = {"units": out_units, "slope_log_eps_star_vs_log_gap": slope,
              "verdict_rule": "threshold if AIC_power - AIC_threshold > 2 and the eps* "
                              "interval starts above the smallest eps; power law if it is < 0; "
                              "undecided otherwise (realmodel.onset)"}
    write_json(ctx.out / "onset.json", result)
    return result


def onset_table(result) -> str:
    """One line per unit: gap, verdict, eps* with its interval, delta AIC."""
    lines = ["| unit | gap g | verdict | eps* [interval] | AIC_power - AIC_threshold | "
             "flips (trained, by eps) |", "|---|---|---|---|---|---|"]
    for u in result["units"]:
        t = u["fit"]["threshold"]
        lines.append(f"| {u['unit']} | {u['gap']:.4f} | {u['verdict']} | {t['eps_star']:.4g} "
                     f"[{t['lo']:.4g}, {t['hi']:.4g}] | {u['fit']['delta_aic']:.2f} | "
                     f"{sum(u['flipped'])} / {len(u['flipped'])} |")
    sl = result["slope_log_eps_star_vs_log_gap"]
    lines.append("")
    lines.append("slope of log eps* against log g: " + (
        "not fitted (fewer than 3 gaps with eps* > 0)" if sl is None else
        f"{sl['value']:.3f} [{sl['lo']:.3f}, {sl['hi']:.3f}]"))
    return "\n".join(lines)


def onset_figure(result, path) -> str:
    """F against eps / g per unit with both fits (the verdict's probe)."""
    import matplotlib.pyplot as plt

    from .onset import power_curve, threshold_curve

    n = len(result["units"])
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, u in zip(axes.flat, result["units"]):
        p = u["fit"]["probe"]
        pr = u["probes"][p]
        x = np.array(u["eps_over_g"])
        F = (pr["base"] - np.array(pr["mean"])) / pr["base"]
        ax.plot(x, F, "o", color="C0", label="trained")
        if "random" in pr:
            ax.plot(x, (pr["base"] - np.array(pr["random"]["mean"])) / pr["base"], "x",
                    color="C3", label="random (mean)")
        fits = u["fits"][p]
        xx = np.geomspace(x.min(), x.max(), 200)
        t = fits["threshold"]
        ax.plot(xx, threshold_curve(xx, t["A"], t["x_star"], t["p"]), "-", color="C1",
                label=f"threshold, x* = {t['x_star']:.3g}")
        ax.plot(xx, power_curve(xx, fits["power"]["A"], fits["power"]["p"]), "--",
                color="C2", label="power law")
        ax.set_xscale("log")
        ax.axvline(1.0, color="k", lw=0.6, ls=":")
        ax.set_title(f"{u['unit']} (g = {u['gap']:.3f}): {u['verdict']}", fontsize=8)
        ax.set_xlabel("eps / g")
        ax.set_ylabel(f"F = (base - {p}) / base")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return str(path)


def run_onset_study(cfg: dict) -> dict:
    """Run the stages of ``cfg`` (validated); returns {"table", "files"}."""
    from .study import Context

    ctx = Context(cfg)
    out = ctx.out
    out.mkdir(parents=True, exist_ok=True)
    with FolderLock(out):
        stages = cfg["study"]["stages"]
        if "train" in stages or "sweep" in stages:
            stage_train(ctx)
        if "sweep" not in stages and "fit" not in stages:
            return {"table": "trained", "files": {}}
        sweep = stage_sweep(ctx)
        if "fit" not in stages:
            return {"table": "swept", "files": {}}
        result = stage_fit(ctx, sweep)
        text = onset_table(result)
        (out / "onset.md").write_text(text + "\n")
        files = {"onset": str(out / "onset.json"), "table": str(out / "onset.md")}
        try:
            files["onset.png"] = onset_figure(result, out / "onset.png")
        except Exception as err:  # noqa: BLE001 - the data are written; say what failed
            logger.error("figure failed (%s: %s); onset.json is complete",
                         type(err).__name__, err)
        return {"table": text, "files": files}
