"""LoRA fine-tuning of a BERT sentence encoder with optax's AdamW, checkpointed and resumable.

Objective: the supervised contrastive loss of Khosla et al. (2020, "L_out") on the
L2-normalised sentence embeddings :math:`z_i` of a batch with labels :math:`y_i`,

.. math::

    \\mathcal L = \\frac{1}{|I|} \\sum_{i \\in I} \\frac{-1}{|P(i)|} \\sum_{p \\in P(i)}
    \\log \\frac{e^{\\langle z_i, z_p\\rangle / \\tau}}
                {\\sum_{a \\ne i} e^{\\langle z_i, z_a\\rangle / \\tau}},
    \\qquad P(i) = \\{p \\ne i : y_p = y_i\\},

which pulls sentences of the same label together and pushes the other label away on the
sphere S^{H-1} (anchors I: those with at least one positive; batches are stratified so all
have). The intended task is the polarity of the 200 Pang-Lee movie-review sentences
(:func:`realmodel.data.pang_lee_polarity`): all-MiniLM-L6-v2 was trained for paraphrase /
topical similarity, so its frozen embedding places sentences by what they talk about, not by
whether the review is positive or negative, and the frozen model does not already minimise
this loss (the loss at step 0 is the frozen model's; a task the base model already solved
would give LoRA nothing to learn and the update nothing to forget). Measured with all 200
sentences as one batch and tau = 0.1 (:func:`contrastive_loss`, 2026-11-29): the frozen
model's loss is 5.62 with the true labels and 5.675 +- 0.003 with shuffled labels (5 draws),
while perfectly separated labels on two antipodal points would give about log 99 = 4.60; the
frozen embedding is close to chance on this task. No claim here depends on what the model
learns: tests check mechanics (gradients, changing loss, resume).

Batches: ``batch_size / n_classes`` sentences of each label, drawn without replacement by
``numpy.random.default_rng([seed, step])``, so step k's batch does not depend on where a run
resumed. All sentences are padded to one bucket length (one XLA compilation).

Checkpoints (every ``checkpoint_every`` steps and at the end) hold the step, the LoRA
parameters, the AdamW state and the loss history in one ``.npz``, written to a temporary file
unique to the process and moved into place with ``os.replace`` (atomic: the file is always a
complete checkpoint). A checkpoint records a fingerprint of the model, data and
hyper-parameters (not ``steps`` or ``checkpoint_every``, so a run can be extended) and is
refused by a different run. Resuming reproduces the uninterrupted run bit for bit on CPU.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .jax_model import BUCKETS, bucket_length, encode, forward_batch, jax_params, pad_ids
from .lora import LoraConfig, init_lora

__all__ = ["TrainConfig", "TrainResult", "supcon_loss", "stratified_batch", "train_lora",
           "contrastive_loss"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train_lora`.

    Parameters
    ----------
    steps : int
        Total number of optimiser steps (a resumed run continues up to it).
    batch_size : int
        Sentences per step; a multiple of the number of classes, >= 2 per class.
    learning_rate, weight_decay : float
        AdamW (``optax.adamw``; weight decay decoupled, applied to A and B).
    temperature : float
        tau of the contrastive loss, > 0.
    seed : int
        Seeds the LoRA initialisation and the batches.
    checkpoint_every : int
        Steps between checkpoints (and one at the end).
    """

    steps: int
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    temperature: float = 0.1
    seed: int = 0
    checkpoint_every: int = 10

    def __post_init__(self):
        for name in ("steps", "batch_size", "seed", "checkpoint_every"):
            value = getattr(self, name)
            low = 0 if name in ("steps", "seed") else 1
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name, positive in (("learning_rate", True), ("weight_decay", False),
                               ("temperature", True)):
            value = float(getattr(self, name))
            if not np.isfinite(value) or value < 0 or (positive and value == 0):
                raise ValueError(f"{name} must be finite and {'> 0' if positive else '>= 0'}, "
                                 f"got {getattr(self, name)!r}")


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What :func:`train_lora` returns.

    Attributes
    ----------
    lora : dict
        Final LoRA parameters (numpy float32).
    losses : ndarray (steps,)
        Loss of each step's batch, evaluated before that step's update.
    grad_norms : ndarray (steps, n_keys, 2)
        Frobenius norms of the gradients of A ([..., 0]) and B ([..., 1]) per adapted matrix
        (``lora_config.keys()`` order).
    resumed_from : int
        Step the run started from (0 for a fresh run).
    """

    lora: dict
    losses: np.ndarray
    grad_norms: np.ndarray
    resumed_from: int


def supcon_loss(z, labels, temperature: float):
    """Supervised contrastive loss (module docstring) of unit vectors ``z`` (B, H) with
    integer ``labels`` (B,); anchors without a positive are left out."""
    sim = jnp.matmul(z, z.T, precision=jax.lax.Precision.HIGHEST) / temperature
    eye = jnp.eye(z.shape[0], dtype=bool)
    logits = jnp.where(eye, -jnp.inf, sim)
    log_prob = logits - jax.scipy.special.logsumexp(logits, axis=1, keepdims=True)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    n_pos = positive.sum(axis=1)
    per_anchor = -jnp.sum(jnp.where(positive, log_prob, 0.0), axis=1) / jnp.maximum(n_pos, 1)
    has = n_pos > 0
    return jnp.sum(jnp.where(has, per_anchor, 0.0)) / jnp.maximum(has.sum(), 1)


def stratified_batch(labels, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Indices of step ``step``'s batch: ``batch_size / n_classes`` of each label, without
    replacement, from ``numpy.random.default_rng([seed, step])``."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    per = batch_size // classes.size
    if batch_size % classes.size or per < 2:
        raise ValueError(f"batch_size must be a multiple of the {classes.size} classes with "
                         f">= 2 sentences each, got {batch_size}")
    rng = np.random.default_rng([seed, step])
    out = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        if members.size < per:
            raise ValueError(f"label {c} has {members.size} sentences, fewer than "
                             f"batch_size / n_classes = {per}")
        out.append(np.sort(rng.choice(members, size=per, replace=False)))
    return np.concatenate(out)


@functools.lru_cache(maxsize=8)
def _step_function(lora_config, n_heads, ln_eps, learning_rate, weight_decay, temperature,
                   pooling="mean"):
    """(optimizer, jitted step) for one model shape and set of hyper-parameters."""
    opt = optax.adamw(learning_rate, weight_decay=weight_decay)

    def loss_fn(lora, params, ids, mask, labels):
        _, emb = forward_batch(params, ids, mask, lora, lora_config, n_heads=n_heads,
                               ln_eps=ln_eps, pooling=pooling)
        return supcon_loss(emb, labels, temperature)

    @jax.jit
    def step(lora, opt_state, params, ids, mask, labels):
        loss, grads = jax.value_and_grad(loss_fn)(lora, params, ids, mask, labels)
        updates, opt_state = opt.update(grads, opt_state, lora)
        lora = optax.apply_updates(lora, updates)
        norms = jnp.stack([jnp.stack([jnp.linalg.norm(grads[k]["A"]),
                                      jnp.linalg.norm(grads[k]["B"])])
                           for k in lora_config.keys()])
        return lora, opt_state, loss, norms

    return opt, step


def _fingerprint(weights, ids, mask, labels, lora_config, config) -> str:
    digest = hashlib.sha256()
    if weights.sha256 is not None:
        digest.update(weights.sha256.encode())
    else:
        for array in weights.tensors().values():
            digest.update(np.ascontiguousarray(array).tobytes())
    for array in (ids, mask, labels):
        digest.update(np.ascontiguousarray(array).tobytes())
    hyper = {k: v for k, v in asdict(config).items() if k not in ("steps", "checkpoint_every")}
    run = {"lora": asdict(lora_config), "train": hyper}
    if weights.pooling != "mean":  # mean pooling keeps the fingerprints of earlier runs
        run["pooling"] = weights.pooling
    digest.update(json.dumps(run, sort_keys=True).encode())
    return digest.hexdigest()


def _save(path: Path, fingerprint, step, lora, opt_state, losses, grad_norms):
    arrays = {"fingerprint": np.array(fingerprint), "step": np.array(step),
              "losses": np.asarray(losses, dtype=np.float64),
              "grad_norms": np.asarray(grad_norms, dtype=np.float64)}
    for key, ab in lora.items():
        for name in ("A", "B"):
            arrays[f"lora/{key}/{name}"] = np.asarray(ab[name])
    for i, leaf in enumerate(jax.tree_util.tree_leaves(opt_state)):
        arrays[f"opt/{i}"] = np.asarray(leaf)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # atomic: the file is always a complete checkpoint


def _load(path: Path, fingerprint, lora_template, opt_template):
    with np.load(path) as data:
        if str(data["fingerprint"]) != fingerprint:
            raise ValueError(f"checkpoint {path} belongs to a different run (model, data, LoRA "
                             "or training hyper-parameters differ); delete it or choose another "
                             "path")
        lora = {key: {name: data[f"lora/{key}/{name}"].copy() for name in ("A", "B")}
                for key in lora_template}
        leaves, treedef = jax.tree_util.tree_flatten(opt_template)
        restored = [jnp.asarray(data[f"opt/{i}"], dtype=np.asarray(leaf).dtype)
                    for i, leaf in enumerate(leaves)]
        return (int(data["step"]), lora, jax.tree_util.tree_unflatten(treedef, restored),
                list(data["losses"]), list(data["grad_norms"]))


def train_lora(weights, ids_list, labels, lora_config: LoraConfig, config: TrainConfig,
               checkpoint=None, lora_init: dict | None = None) -> TrainResult:
    """Fine-tune LoRA factors on the contrastive objective of the module docstring.

    Parameters
    ----------
    weights : BertWeights
        Frozen base model.
    ids_list : sequence of int arrays
        Token ids per sentence (:func:`realmodel.tokenizer.encode_ids`).
    labels : array_like of int
        One label per sentence.
    lora_config : LoraConfig
        Where LoRA applies, rank and alpha.
    config : TrainConfig
    checkpoint : path, optional
        ``.npz`` checkpoint: resumed from if it exists (same run only), written every
        ``config.checkpoint_every`` steps and at the end.
    lora_init : dict, optional
        Starting LoRA parameters (default :func:`realmodel.lora.init_lora` with
        ``config.seed``: B = 0, so step 0 sees the base model).
    """
    if not isinstance(lora_config, LoraConfig):
        raise ValueError(f"lora_config must be a LoraConfig, got {type(lora_config).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    lora_config.check(weights)
    labels = np.asarray(labels)
    ids_list = [np.asarray(i) for i in ids_list]
    if labels.ndim != 1 or labels.size != len(ids_list) or not np.issubdtype(labels.dtype,
                                                                              np.integer):
        raise ValueError(f"labels must be {len(ids_list)} integers (one per sentence), got "
                         f"shape {labels.shape} dtype {labels.dtype}")
    stratified_batch(labels, config.batch_size, config.seed, 0)  # validates batch_size
    buckets = tuple(b for b in BUCKETS if b <= weights.max_positions) or (weights.max_positions,)
    length = bucket_length(max(i.size for i in ids_list), buckets)
    ids, mask = pad_ids(ids_list, length)
    labels = labels.astype(np.int32)
    fingerprint = _fingerprint(weights, ids, mask, labels, lora_config, config)

    opt, step_fn = _step_function(lora_config, weights.n_heads, weights.ln_eps,
                                  float(config.learning_rate), float(config.weight_decay),
                                  float(config.temperature), weights.pooling)
    lora = init_lora(lora_config, weights, seed=config.seed) if lora_init is None else lora_init
    lora = jax.tree_util.tree_map(jnp.asarray, lora)
    opt_state = opt.init(lora)
    start, losses, grad_norms = 0, [], []
    path = None if checkpoint is None else Path(checkpoint)
    if path is not None and path.exists():
        start, lora, opt_state, losses, grad_norms = _load(path, fingerprint, lora, opt_state)
        if start > config.steps:
            raise ValueError(f"steps must be >= the checkpoint's {start} steps, got "
                             f"{config.steps}")
    params = jax_params(weights)
    for step in range(start, config.steps):
        rows = stratified_batch(labels, config.batch_size, config.seed, step)
        lora, opt_state, loss, norms = step_fn(lora, opt_state, params, ids[rows], mask[rows],
                                               labels[rows])
        losses.append(float(loss))
        grad_norms.append(np.asarray(norms, dtype=np.float64))
        done = step + 1
        if path is not None and (done % config.checkpoint_every == 0 or done == config.steps):
            _save(path, fingerprint, done, lora, opt_state, losses, grad_norms)
    n_keys = len(lora_config.keys())
    return TrainResult(
        lora={k: {n: np.asarray(v[n]) for n in ("A", "B")} for k, v in lora.items()},
        losses=np.asarray(losses, dtype=np.float64),
        grad_norms=np.asarray(grad_norms, dtype=np.float64).reshape(-1, n_keys, 2),
        resumed_from=start)


def contrastive_loss(weights, ids_list, labels, temperature: float, lora=None,
                     lora_config=None) -> float:
    """The supervised contrastive loss (module docstring) of all the given sentences as one
    batch, with or without LoRA: embeddings by :func:`realmodel.jax_model.encode`, so
    compilation depends on the bucket lengths only, not on the number of sentences."""
    labels = np.asarray(labels)
    if labels.shape != (len(ids_list),):
        raise ValueError(f"labels must have one entry per sentence ({len(ids_list)}), got "
                         f"shape {labels.shape}")
    z = encode(weights, ids_list, lora=lora, config=lora_config)
    return float(supcon_loss(jnp.asarray(z), jnp.asarray(labels), float(temperature)))
