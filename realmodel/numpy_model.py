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
The sentence embedding is sentence-transformers' mean pooling over the attention mask followed
by its Normalize module:

.. math::

    m = \\frac{1}{n} \\sum_i x_i^{(L)}, \\qquad e = \\frac{m}{\\max(\\|m\\|_2, 10^{-12})}.

The hidden states :math:`x^{(0)}, \\dots, x^{(L)}` are the token clouds layer by layer (depth
is time in the mean-field picture). Every array is cast to float64 before use.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _layer(x, lw, n_heads: int, eps: float) -> np.ndarray:
    n, H = x.shape
    d = H // n_heads

    def heads(W, b):  # (n, H) -> (heads, n, d)
        return (x @ _f64(W).T + _f64(b)).reshape(n, n_heads, d).transpose(1, 0, 2)

    q, k, v = heads(lw.W_Q, lw.b_Q), heads(lw.W_K, lw.b_K), heads(lw.W_V, lw.b_V)
    ctx = (attention_weights(q, k) @ v).transpose(1, 0, 2).reshape(n, H)
    y = layer_norm(x + ctx @ _f64(lw.W_O).T + _f64(lw.b_O), _f64(lw.ln1_gamma),
                   _f64(lw.ln1_beta), eps)
    ff = gelu(y @ _f64(lw.W_1).T + _f64(lw.b_1)) @ _f64(lw.W_2).T + _f64(lw.b_2)
    return layer_norm(y + ff, _f64(lw.ln2_gamma), _f64(lw.ln2_beta), eps)


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
    n = ids.size
    x = (_f64(weights.word_embeddings[ids]) + _f64(weights.position_embeddings[:n])
         + _f64(weights.token_type_embeddings[0]))
    x = layer_norm(x, _f64(weights.ln_gamma), _f64(weights.ln_beta), weights.ln_eps)
    states = [x]
    for lw in weights.layers:
        x = _layer(x, lw, weights.n_heads, weights.ln_eps)
        states.append(x)
    m = x.mean(axis=0)
    embedding = m / max(np.linalg.norm(m), 1e-12)
    return Forward(hidden_states=np.stack(states), embedding=embedding)


def encode(weights, ids_list) -> np.ndarray:
    """Sentence embeddings (n_sentences, H), float64: :func:`forward` of each id array."""
    return np.stack([forward(weights, ids).embedding for ids in ids_list])
