"""Collapse of a representation: how far a set of vectors has fallen onto a few directions.

A fine-tuning that maps every sentence onto two points forgets every probe at once, and the
probes alone cannot tell that from a change of the kind the theory predicts. Beside every
probe the study therefore reports, for the held-out sentence embeddings and, layer by layer,
for the held-out token clouds, two measures of a set of n nonzero vectors :math:`e_1, \\dots,
e_n` (rows of E, each normalised to unit length first, :math:`\\hat e_i = e_i / |e_i|`):

- the **mean pairwise cosine**

  .. math::

      \\bar c = \\frac{1}{n(n-1)} \\sum_{i \\ne j} \\langle \\hat e_i, \\hat e_j\\rangle
              = \\frac{|\\sum_i \\hat e_i|^2 - n}{n(n-1)},

  1 when all vectors coincide, 0 for orthogonal ones, -1/(n-1) at least;
- the **effective rank** of Roy and Vetterli (2007), the exponential of the entropy of the
  normalised singular values :math:`\\sigma_k` of :math:`\\hat E`:

  .. math::

      \\operatorname{erank}(\\hat E) = \\exp\\Big(-\\sum_k p_k \\log p_k\\Big), \\qquad
      p_k = \\sigma_k / \\textstyle\\sum_j \\sigma_j,

  between 1 (all vectors on one line) and rank(E); k orthonormal vectors give exactly k.

Neither is centred: a collapse onto one point (mean cosine 1, effective rank 1) is what is
looked for, and centring would hide it.
"""

from __future__ import annotations

import numpy as np

from continuum.checks import check_array

__all__ = ["mean_pairwise_cosine", "effective_rank", "collapse", "cloud_collapse"]


def _unit_rows(E, name: str) -> np.ndarray:
    E = check_array(E, name, ndim=2)
    if E.shape[0] < 2:
        raise ValueError(f"{name} must have at least 2 rows (vectors), got {E.shape[0]}")
    norms = np.linalg.norm(E, axis=1)
    if np.any(norms == 0):
        raise ValueError(f"{name} has a zero row ({int(np.argmin(norms))}): no direction")
    return E / norms[:, None]


def mean_pairwise_cosine(E) -> float:
    """Mean cosine over the n(n-1) ordered pairs i != j of the rows of E (module docstring)."""
    U = _unit_rows(E, "E")
    n = U.shape[0]
    s = U.sum(axis=0)
    return float((s @ s - n) / (n * (n - 1)))


def effective_rank(E) -> float:
    """Roy-Vetterli effective rank of the row-normalised E (module docstring)."""
    sigma = np.linalg.svd(_unit_rows(E, "E"), compute_uv=False)
    p = sigma[sigma > 0] / sigma.sum()
    return float(np.exp(-np.sum(p * np.log(p))))


def collapse(E) -> dict:
    """``{"mean_cosine", "effective_rank"}`` of the rows of E (n x H, n >= 2)."""
    return {"mean_cosine": mean_pairwise_cosine(E), "effective_rank": effective_rank(E)}


def cloud_collapse(hidden_states) -> dict:
    """:func:`collapse` of the token cloud of every layer.

    Parameters
    ----------
    hidden_states : array (L + 1, N, H)
        The tokens of all held-out sentences at every layer (e.g. the
        :func:`realmodel.numpy_model.forward` hidden states concatenated over sentences).

    Returns
    -------
    dict
        ``{"mean_cosine": [L + 1 floats], "effective_rank": [L + 1 floats]}``.
    """
    states = check_array(hidden_states, "hidden_states", ndim=3)
    rows = [collapse(layer) for layer in states]
    return {key: [r[key] for r in rows] for key in ("mean_cosine", "effective_rank")}
