"""The BERT forward pass of :mod:`realmodel.numpy_model` in JAX, float32, with LoRA.

Same equations as the numpy reference (embeddings and their LayerNorm, post-LN layers with
exact GELU, mean pooling over the attention mask or the [CLS] token, L2 normalisation),
computed in **float32**
(JAX's default; the stored MiniLM weights are float32 too), so it agrees with the float64
reference to float32 round-off amplified through the layers (the tests bound it). Matrix
products use ``Precision.HIGHEST`` (full float32 on every backend).

LoRA (:mod:`realmodel.lora`): on the adapted layers and targets the projection is

.. math::

    W x + b + \\frac{\\alpha}{r} B (A x),

the low-rank path, never forming :math:`\\Delta = (\\alpha/r) B A`.

Batches are padded: a sentence of n tokens goes into a (batch_size, L) array with L the
smallest of :data:`BUCKETS` >= n, and masked keys get the score -1e9 before the softmax
(exp underflows to exactly 0 in float32, so valid tokens do not see the padding at all).
Only a few shapes exist, so XLA compiles each (2-14 s) a few times at most.
"""

from __future__ import annotations

import weakref
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .weights import BertWeights

__all__ = ["BUCKETS", "bucket_length", "pad_ids", "jax_params", "forward_batch", "encode"]

#: padded sequence lengths (the tokenizer truncates at 256)
BUCKETS = (16, 32, 64, 128, 256)
#: score of a masked key: far below float32's exp underflow (exp(-104) = 0)
_MASKED = -1e9
_HIGHEST = jax.lax.Precision.HIGHEST
_PARAMS = weakref.WeakKeyDictionary()


def bucket_length(n: int, buckets=BUCKETS) -> int:
    """Smallest bucket >= n."""
    for b in buckets:
        if n <= b:
            return b
    raise ValueError(f"a sequence of {n} tokens is longer than the largest bucket "
                     f"{buckets[-1]} (truncate in the tokenizer)")


def pad_ids(ids_list, length: int, batch_size: int | None = None):
    """(ids, mask): int32 (B, length) with zeros after each sentence, and a bool mask; B =
    ``batch_size`` (rows beyond the sentences are all padding, mask False) or the number of
    sentences."""
    ids_list = [np.asarray(i) for i in ids_list]
    rows = len(ids_list) if batch_size is None else batch_size
    if rows < len(ids_list):
        raise ValueError(f"batch_size {batch_size} is smaller than the {len(ids_list)} "
                         "sentences")
    ids = np.zeros((rows, length), dtype=np.int32)
    mask = np.zeros((rows, length), dtype=bool)
    for i, row in enumerate(ids_list):
        if row.size > length:
            raise ValueError(f"sentence {i} has {row.size} tokens, more than length {length}")
        ids[i, :row.size] = row
        mask[i, :row.size] = True
    return ids, mask


def jax_params(weights: BertWeights) -> dict:
    """The weights as a pytree of float32 jax arrays (cached per BertWeights object)."""
    try:
        return _PARAMS[weights]
    except KeyError:
        pass
    emb = {k: jnp.asarray(getattr(weights, k), dtype=jnp.float32)
           for k in ("word_embeddings", "position_embeddings", "token_type_embeddings",
                     "ln_gamma", "ln_beta")}
    layers = [{k: jnp.asarray(v, dtype=jnp.float32) for k, v in lw.arrays().items()}
              for lw in weights.layers]
    params = {"emb": emb, "layers": layers}
    _PARAMS[weights] = params
    return params


def _layer_norm(x, gamma, beta, eps):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + eps) * gamma + beta


def _linear(x, W, b, ab=None, scale=1.0):
    """x W^T + b (+ scale (x A^T) B^T): x (..., in), W (out, in)."""
    y = jnp.matmul(x, W.T, precision=_HIGHEST) + b
    if ab is not None:
        y = y + scale * jnp.matmul(jnp.matmul(x, ab["A"].T, precision=_HIGHEST), ab["B"].T,
                                   precision=_HIGHEST)
    return y


def forward_batch(params, ids, mask, lora=None, config=None, *, n_heads: int, ln_eps: float,
                  pooling: str = "mean"):
    """Hidden states (L + 1, B, n, H) and sentence embeddings (B, H) of a padded batch.

    Pure function of arrays (differentiable in ``params`` and ``lora``); jit it, or use the
    jitted :func:`_forward_jit` through :func:`encode`. ``config`` (a LoraConfig) says where
    ``lora`` applies; both None for the base model. Padded positions (``mask`` False) get
    finite values that must be ignored.
    """
    emb = params["emb"]
    n = ids.shape[1]
    x = (emb["word_embeddings"][ids] + emb["position_embeddings"][:n][None]
         + emb["token_type_embeddings"][0])
    x = _layer_norm(x, emb["ln_gamma"], emb["ln_beta"], ln_eps)
    bsz, _, H = x.shape
    d = H // n_heads
    states = [x]
    key_mask = mask[:, None, None, :]
    for i, lw in enumerate(params["layers"]):
        def proj(t, W, b):
            ab = None
            if config is not None and i in config.layers and t in config.targets:
                ab = lora[f"{i}.{t}"]
            scale = config.scale if config is not None else 1.0
            y = _linear(x, W, b, ab, scale)
            return y.reshape(bsz, n, n_heads, d).transpose(0, 2, 1, 3)

        q = proj("Q", lw["W_Q"], lw["b_Q"])
        k = proj("K", lw["W_K"], lw["b_K"])
        v = proj("V", lw["W_V"], lw["b_V"])
        s = jnp.matmul(q, jnp.swapaxes(k, -1, -2), precision=_HIGHEST) / np.sqrt(d)
        s = jnp.where(key_mask, s, _MASKED)
        a = jax.nn.softmax(s, axis=-1)
        ctx = jnp.matmul(a, v, precision=_HIGHEST).transpose(0, 2, 1, 3).reshape(bsz, n, H)
        y = _layer_norm(x + _linear(ctx, lw["W_O"], lw["b_O"]), lw["ln1_gamma"],
                        lw["ln1_beta"], ln_eps)
        hmid = jax.nn.gelu(_linear(y, lw["W_1"], lw["b_1"]), approximate=False)
        x = _layer_norm(y + _linear(hmid, lw["W_2"], lw["b_2"]), lw["ln2_gamma"],
                        lw["ln2_beta"], ln_eps)
        states.append(x)
    if pooling == "cls":
        pooled = x[:, 0]
    else:
        m = mask[..., None].astype(x.dtype)
        pooled = jnp.sum(x * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1e-9)
    norm = jnp.sqrt(jnp.sum(pooled ** 2, axis=-1, keepdims=True))
    return jnp.stack(states), pooled / jnp.maximum(norm, 1e-12)


_forward_jit = jax.jit(forward_batch, static_argnames=("config", "n_heads", "ln_eps", "pooling"))


def encode(weights: BertWeights, ids_list, lora=None, config=None, batch_size: int = 8,
           hidden_states: bool = False):
    """Sentence embeddings (N, H), float32 numpy, of token-id arrays of any lengths.

    Sentences are grouped by bucket length (:data:`BUCKETS`) and run in padded batches of
    exactly ``batch_size`` rows, so XLA compiles at most one shape per bucket.

    Parameters
    ----------
    weights : BertWeights
    ids_list : sequence of int arrays
        Token ids per sentence (:func:`realmodel.tokenizer.encode_ids`).
    lora, config : dict, LoraConfig, optional
        LoRA parameters (:func:`realmodel.lora.init_lora`) and where they apply.
    batch_size : int
    hidden_states : bool
        Also return the list of per-sentence hidden states (L + 1, n, H) (padding cut off).
    """
    if (lora is None) != (config is None):
        raise ValueError("give lora and config together (or neither)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if config is not None:
        config.check(weights)
    ids_list = [np.asarray(i) for i in ids_list]
    for i, row in enumerate(ids_list):
        if row.ndim != 1 or row.size == 0:
            raise ValueError(f"ids_list[{i}] must be a non-empty 1-D array, got shape "
                             f"{row.shape}")
        if row.min() < 0 or row.max() >= weights.vocab_size:
            raise ValueError(f"ids_list[{i}] has ids outside [0, {weights.vocab_size - 1}]")
    buckets = tuple(b for b in BUCKETS if b <= weights.max_positions) or (weights.max_positions,)
    params = jax_params(weights)
    run = partial(_forward_jit, config=config, n_heads=weights.n_heads, ln_eps=weights.ln_eps,
                  pooling=weights.pooling)
    out = np.zeros((len(ids_list), weights.hidden), dtype=np.float32)
    states = [None] * len(ids_list)
    by_bucket = {}
    for i, row in enumerate(ids_list):
        by_bucket.setdefault(bucket_length(row.size, buckets), []).append(i)
    for length, members in sorted(by_bucket.items()):
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            ids, mask = pad_ids([ids_list[i] for i in chunk], length, batch_size)
            hs, emb = run(params, ids, mask, lora)
            emb = np.asarray(emb)
            hs = np.asarray(hs) if hidden_states else None
            for row, i in enumerate(chunk):
                out[i] = emb[row]
                if hidden_states:
                    states[i] = hs[:, row, :ids_list[i].size]
    return (out, states) if hidden_states else out
