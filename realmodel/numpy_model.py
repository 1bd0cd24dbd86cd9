"""Float64 numpy reference forward pass of a BERT encoder and the sentence-transformers
embedding.

For token ids :math:`t_0, \\dots, t_{n-1}` (one sentence, no padding, token type 0):

.. math::

    x_i^{(0)} = \\mathrm{LN}_{emb}(E_{word}[t_i] + E_{pos}[i] + E_{type}[0]),
    \\qquad x^{(l+1)} = \\mathrm{layer}_l(x^{(l)}), \\quad l = 0, \\dots, L - 1,

with the post-LN layer of :mod:`realmodel.weights`,
:math:`\\mathrm{LN}(z) = \\gamma \\odot (z - \\bar z) / \\sqrt{\\mathrm{var}(z) + \\epsilon}
+ \\beta` (biased variance over the H features) and the exact GELU
:math:`\\mathrm{gelu}(z) = z \\Phi(z) = \\tfrac{z}{2}(1 + \\operatorname{erf}(z/\\sqrt{2}))`.
The sentence embedding is sentence-transformers' pooling (``weights.pooling``: the mean over
the attention mask, or the [CLS] token x_0) followed by its Normalize module:

.. math::

    m = \\frac{1}{n} \\sum_i x_i^{(L)} \\ (\\text{or } m = x_0^{(L)}), \\qquad
    e = \\frac{m}{\\max(\\|m\\|_2, 10^{-12})}.

The hidden states :math:`x^{(0)}, \\dots, x^{(L)}` are the token clouds layer by layer (depth
is time in the mean-field picture). Every array is cast to float64 before use.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from scipy.special import erf

__all__ = ["Forward", "forward", "encode", "layer_norm", "gelu", "attention_weights"]


@dataclass(frozen=True, eq=False)
class Forward:
    """Result of :func:`forward` for one sentence.

    Attributes
    ----------
    hidden_states : ndarray (L + 1, n, H)
        x^(0) (embeddings after their LayerNorm) and the output of every layer.
    embedding : ndarray (H,)
        Mean-pooled, L2-normalised sentence embedding.
    """

    hidden_states: np.ndarray
    embedding: np.ndarray


def layer_norm(x, gamma, beta, eps: float) -> np.ndarray:
    """gamma * (x - mean) / sqrt(var + eps) + beta over the last axis (biased variance)."""
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def gelu(x) -> np.ndarray:
    """Exact GELU, x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (BERT's ``hidden_act = "gelu"``)."""
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def attention_weights(q, k) -> np.ndarray:
    """softmax_j(<q_i, k_j> / sqrt(d_h)) per head: q, k are (heads, n, d_h); returns
    (heads, n, n), rows summing to 1 (max subtracted before exponentiation)."""
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    return s / s.sum(axis=-1, keepdims=True)


def _linear(x, W, b) -> np.ndarray:
    """x W^T + b over the last axis, as one matrix product (numpy would loop over the leading
    axes of a stacked product, one small memory-bound product per sentence)."""
    *lead, H = x.shape
    return (x.reshape(-1, H) @ _f64(W).T + _f64(b)).reshape(*lead, -1)


def _layer(x, lw, n_heads: int, eps: float) -> np.ndarray:
    """One post-LN layer on token clouds x of shape (..., n, H) (leading axes: sentences of
    the same length n, computed independently)."""
    *lead, n, H = x.shape
    d = H // n_heads

    def heads(W, b):  # (..., n, H) -> (..., heads, n, d)
        return np.swapaxes(_linear(x, W, b).reshape(*lead, n, n_heads, d), -3, -2)

    q, k, v = heads(lw.W_Q, lw.b_Q), heads(lw.W_K, lw.b_K), heads(lw.W_V, lw.b_V)
    ctx = np.swapaxes(attention_weights(q, k) @ v, -3, -2).reshape(*lead, n, H)
    y = layer_norm(x + _linear(ctx, lw.W_O, lw.b_O), _f64(lw.ln1_gamma), _f64(lw.ln1_beta),
                   eps)
    ff = _linear(gelu(_linear(y, lw.W_1, lw.b_1)), lw.W_2, lw.b_2)
    return layer_norm(y + ff, _f64(lw.ln2_gamma), _f64(lw.ln2_beta), eps)


def _embed(weights, ids) -> np.ndarray:
    """x^(0) of token ids (..., n): embeddings summed and normalised, float64 (..., n, H)."""
    n = ids.shape[-1]
    x = (_f64(weights.word_embeddings[ids]) + _f64(weights.position_embeddings[:n])
         + _f64(weights.token_type_embeddings[0]))
    return layer_norm(x, _f64(weights.ln_gamma), _f64(weights.ln_beta), weights.ln_eps)


def _pool(x, pooling: str = "mean") -> np.ndarray:
    """Mean over the tokens (axis -2), or the first token for ``pooling="cls"``, divided by
    max(norm, 1e-12)."""
    m = x[..., 0, :] if pooling == "cls" else x.mean(axis=-2)
    return m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)


def _check_ids(weights, ids) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be a non-empty 1-D integer array, got shape {ids.shape} "
                         f"dtype {ids.dtype}")
    if ids.min() < 0 or ids.max() >= weights.vocab_size:
        raise ValueError(f"ids must lie in [0, {weights.vocab_size - 1}] (the vocabulary), got "
                         f"[{ids.min()}, {ids.max()}]")
    if ids.size > weights.max_positions:
        raise ValueError(f"ids has {ids.size} tokens, more than the {weights.max_positions} "
                         "positions of the model (truncate in the tokenizer)")
    return ids


def forward(weights, ids) -> Forward:
    """Hidden states of every layer and the sentence embedding of one sentence (module
    docstring), in float64.

    Parameters
    ----------
    weights : BertWeights
    ids : array_like of int (n,)
        Token ids, [CLS] ... [SEP] (e.g. from :func:`realmodel.tokenizer.encode_ids`).
    """
    ids = _check_ids(weights, ids)
    x = _embed(weights, ids)
    states = [x]
    for lw in weights.layers:
        x = _layer(x, lw, weights.n_heads, weights.ln_eps)
        states.append(x)
    return Forward(hidden_states=np.stack(states), embedding=_pool(x, weights.pooling))


def encode(weights, ids_list, max_tokens: int = 2048) -> np.ndarray:
    """Sentence embeddings (n_sentences, H), float64: the :func:`forward` embedding of each id
    array, computed for sentences of equal length together (one stacked array of at most
    ``max_tokens`` tokens per pass, the weights cast to float64 once per call), which equals
    sentence-by-sentence evaluation up to float64 round-off of the reordered sums.

    Parameters
    ----------
    weights : BertWeights
    ids_list : sequence of int arrays
        Token ids per sentence (:func:`realmodel.tokenizer.encode_ids`).
    max_tokens : int
        Tokens per stacked pass (memory: about 60 max_tokens H bytes at the feed-forward).
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, (int, np.integer)) \
            or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    ids_list = [_check_ids(weights, ids) for ids in ids_list]
    layers = [SimpleNamespace(**{k: _f64(v) for k, v in lw.arrays().items()})
              for lw in weights.layers]
    out = np.empty((len(ids_list), weights.hidden))
    by_length = {}
    for i, ids in enumerate(ids_list):
        by_length.setdefault(ids.size, []).append(i)
    for n, members in sorted(by_length.items()):
        rows = max(1, max_tokens // n)
        for start in range(0, len(members), rows):
            chunk = members[start:start + rows]
            x = _embed(weights, np.stack([ids_list[i] for i in chunk]))
            for lw in layers:
                x = _layer(x, lw, weights.n_heads, weights.ln_eps)
            out[chunk] = _pool(x, weights.pooling)
    return out
