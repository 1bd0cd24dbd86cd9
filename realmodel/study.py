"""A study of all-MiniLM-L6-v2 under LoRA, run by ``meanfield run`` (``[study] kind =
"realmodel"``).

Stages, in this order (``[study] stages`` picks a subset; each writes its result atomically
(temporary file + ``os.replace``) with a fingerprint of the config sections it depends on, and
a re-run skips a stage or variant whose result exists with the same fingerprint, so a killed
run loses at most the piece it was computing):

``spectra``  eigenvalues of every head's OV circuit (M_h = W_V^h W_O^h) and their gaps
             (conjugate pairs as one mode): ``spectra.json``.
``train``    LoRA fine-tuning (``realmodel.train``: supervised contrastive loss on the Pang-Lee
             polarity sentences, AdamW), the factors saved at every checkpoint
             (``train/lora_<step>.npz``) and the loss history (``train/losses.json``);
             ``train/checkpoint.npz`` makes an interrupted run resume.
``analyse``  for the update at every checkpoint (``analyse/step_<step>.json``), for the final
             update scaled by s and for a random control with its singular values
             (``analyse/<variant>.json``): the eigenvalues of (alpha/r) B A per adapted
             matrix, the forgetting probes (word and document similarity correlations,
             question-answer retrieval), the per-layer deviation of held-out token clouds
             (W_2 and mean geodesic) and the top OV-mode rotation of every head against
             ||Delta_h||_2 / g_h; every head's OV spectrum before and after the final update
             (``analyse/ov_spectra.json``).
``flow``     the mean-field flow of the heads with the largest real gaps
             (``realmodel.flow.measure_head``): ``flow.json``.

Then ``record.json`` (every result), ``table.md`` and figures. Sentences: the first
``train.sentences`` Pang-Lee sentences train, the last ``analyse.held_out`` are held out for
the token-cloud deviation (disjoint, checked).

Config sections and keys (defaults in brackets):

[study]    name (required), kind = "realmodel" (required), output [meanfield-out/<name>],
           description [""], stages [["spectra", "train", "analyse", "flow"]], workers [1]
           (unused: one process)
[lora]     rank [2], alpha [32.0], layers [[0, 1, 2, 3, 4, 5]], targets [["V"]]
[train]    steps [120], batch_size [16], learning_rate [1e-3], weight_decay [0.0],
           temperature [0.1], seed [0], checkpoint_every [20], sentences [160]
[analyse]  scales [[0.5, 1.0, 2.0, 4.0, 8.0]], random_control [true], control_seed [1],
           held_out [20], qa_pairs [300] (0: all)
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

__all__ = ["load_study", "validate_config", "run_study", "SCHEMA", "STAGES"]

logger = logging.getLogger(__name__)

STAGES = ("spectra", "train", "analyse", "flow")
SCHEMA = {
    "study": {"name": REQUIRED, "kind": REQUIRED, "output": None, "description": "",
              "stages": list(STAGES), "workers": 1},
    "lora": {"rank": 2, "alpha": 32.0, "layers": [0, 1, 2, 3, 4, 5], "targets": ["V"]},
    "train": {"steps": 120, "batch_size": 16, "learning_rate": 1e-3, "weight_decay": 0.0,
              "temperature": 0.1, "seed": 0, "checkpoint_every": 20, "sentences": 160},
    "analyse": {"scales": [0.5, 1.0, 2.0, 4.0, 8.0], "random_control": True,
                "control_seed": 1, "held_out": 20, "qa_pairs": 300},
    "flow": {"heads": 3, "sentences": 4, "kappas": [1.25, 1.5, 2.0, 2.5, 3.0], "delta": 0.3,
             "steps": 6, "beta": 1.0},
}
#: Pang-Lee polarity: 200 sentences (realmodel.data)
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
    _list(cfg, "lora", "layers", int, lambda v: 0 <= v <= 5)
    _list(cfg, "lora", "targets", str, lambda v: v in ("Q", "K", "V"))
    if "V" not in cfg["lora"]["targets"]:
        raise ConfigError("'lora.targets' must include \"V\" (the OV analyses need it)")
    for key, low in (("steps", 1), ("batch_size", 2), ("seed", 0), ("checkpoint_every", 1),
                     ("sentences", 4)):
        _integer(cfg, "train", key, low)
    for key in ("learning_rate", "temperature"):
        _real(cfg, "train", key)
    _real(cfg, "train", "weight_decay", positive=False)
    _list(cfg, "analyse", "scales", (int, float), lambda v: math.isfinite(v) and v > 0)
    if not isinstance(cfg["analyse"]["random_control"], bool):
        raise ConfigError("'analyse.random_control' must be true or false")
    for key, low in (("control_seed", 0), ("held_out", 1), ("qa_pairs", 0)):
        _integer(cfg, "analyse", key, low)
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


def _stored(path: Path, fingerprint: str):
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
class _Context:
    """What every stage needs, loaded once: weights, tokenizer, sentences, configs."""

    def __init__(self, cfg):
        from .data import pang_lee_polarity
        from .lora import LoraConfig
        from .tokenizer import encode_ids, load_tokenizer
        from .weights import load_minilm

        self.cfg = cfg
        self.out = Path(cfg["study"]["output"])
        self.weights = load_minilm()
        sentences, labels = pang_lee_polarity()
        self.ids = encode_ids(load_tokenizer(), sentences)
        self.labels = np.asarray(labels)
        n_train, n_held = cfg["train"]["sentences"], cfg["analyse"]["held_out"]
        self.train_rows = np.arange(n_train)
        self.held_rows = np.arange(N_SENTENCES - n_held, N_SENTENCES)
        assert not set(self.train_rows) & set(self.held_rows)
        lc = cfg["lora"]
        self.lora_config = LoraConfig(rank=lc["rank"], alpha=lc["alpha"],
                                      layers=tuple(lc["layers"]), targets=tuple(lc["targets"]))


def stage_spectra(ctx) -> dict:
    from .spectra import ov_spectrum, spectral_gap

    path = ctx.out / "spectra.json"
    fp = _fingerprint(ctx.cfg, ["lora"])
    done = _stored(path, fp)
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


def _train_config(cfg, steps):
    from .train import TrainConfig

    t = cfg["train"]
    return TrainConfig(steps=steps, batch_size=t["batch_size"], learning_rate=t["learning_rate"],
                       weight_decay=t["weight_decay"], temperature=t["temperature"],
                       seed=t["seed"], checkpoint_every=t["checkpoint_every"])


def checkpoint_steps(cfg) -> list:
    """The steps at which the factors are kept: every ``checkpoint_every`` and the last."""
    t = cfg["train"]
    steps = list(range(t["checkpoint_every"], t["steps"], t["checkpoint_every"]))
    return steps + [t["steps"]]


def stage_train(ctx) -> dict:
    from .train import train_lora

    folder = ctx.out / "train"
    folder.mkdir(parents=True, exist_ok=True)
    fp = _fingerprint(ctx.cfg, ["lora", "train"])
    done = _stored(folder / "losses.json", fp)
    if done is not None and all((folder / f"lora_{s:05d}.npz").exists()
                                for s in checkpoint_steps(ctx.cfg)):
        return done
    ids = [ctx.ids[i] for i in ctx.train_rows]
    labels = ctx.labels[ctx.train_rows]
    result = None
    for step in checkpoint_steps(ctx.cfg):
        snapshot = folder / f"lora_{step:05d}.npz"
        result = train_lora(ctx.weights, ids, labels, ctx.lora_config,
                            _train_config(ctx.cfg, step), checkpoint=folder / "checkpoint.npz")
        if not snapshot.exists():
            _save_lora(snapshot, result.lora)
        logger.info("[train] step %d: loss %.4f", step, result.losses[-1])
    data = {"fingerprint": fp, "steps": checkpoint_steps(ctx.cfg), "losses": result.losses,
            "grad_norms": result.grad_norms}
    write_json(folder / "losses.json", data)
    return json.loads((folder / "losses.json").read_text())


def variants(ctx, final_lora) -> dict:
    """The final update, its scalings by s and (if asked) the random control."""
    from .lora import random_control, scale_lora

    a = ctx.cfg["analyse"]
    out = {f"trained_s{s:g}": scale_lora(final_lora, s) for s in a["scales"]}
    if a["random_control"]:
        out["random_control"] = random_control(final_lora, ctx.lora_config,
                                               seed=a["control_seed"])
    return out


def stage_analyse(ctx) -> dict:
    from tqdm.auto import tqdm

    from .lora import dense_updates, merge_lora
    from .observables import head_rotations, lora_spectrum, ov_spectra, probe_all

    folder = ctx.out / "analyse"
    folder.mkdir(parents=True, exist_ok=True)
    fp = _fingerprint(ctx.cfg, ["lora", "train", "analyse"])
    held = [ctx.ids[i] for i in ctx.held_rows]
    qa = ctx.cfg["analyse"]["qa_pairs"] or None

    def observe(path, lora, **extra):  # one update's observables, stored atomically
        done = _stored(path, fp)
        if done is None:
            tuned = merge_lora(ctx.weights, lora, ctx.lora_config)
            norms = {k: float(np.linalg.norm(d, 2)) for k, d in
                     dense_updates(lora, ctx.lora_config).items()}
            write_json(path, {"fingerprint": fp, **extra, "spectral_norms": norms,
                              "lora_spectrum": lora_spectrum(lora, ctx.lora_config),
                              "probes": probe_all(ctx.weights, tuned, held, n_pairs=qa),
                              "head_rotations": head_rotations(ctx.weights, lora,
                                                               ctx.lora_config)})
            done = json.loads(path.read_text())
        return done

    steps = checkpoint_steps(ctx.cfg)
    per_step = [observe(folder / f"step_{step:05d}.json",
                        _load_lora(ctx.out / "train" / f"lora_{step:05d}.npz"), step=step)
                for step in tqdm(steps, desc="analyse checkpoints", disable=None)]
    final = _load_lora(ctx.out / "train" / f"lora_{steps[-1]:05d}.npz")
    results = {name: observe(folder / f"{name}.json", lora, variant=name)
               for name, lora in tqdm(variants(ctx, final).items(), desc="analyse variants",
                                      disable=None)}
    spath = folder / "ov_spectra.json"  # every head's OV spectrum before / after the update
    spectra = _stored(spath, fp)
    if spectra is None:
        tuned = merge_lora(ctx.weights, final, ctx.lora_config)
        write_json(spath, {"fingerprint": fp, "heads": ov_spectra(ctx.weights, tuned)})
        spectra = json.loads(spath.read_text())
    return {"checkpoints": per_step, "variants": results,
            "ov_spectra": spectra["heads"]}


def stage_flow(ctx) -> dict:
    from .flow import measure_head, selected_heads

    path = ctx.out / "flow.json"
    f = ctx.cfg["flow"]
    fp = _fingerprint(ctx.cfg, ["flow"])
    done = _stored(path, fp) or {"fingerprint": fp, "heads": []}
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
    ctx = _Context(cfg)
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
