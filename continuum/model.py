"""The attention model: parameters (beta, Q, K, V, normalisation) and LoRA updates.

The model defines the velocity field of the mean-field self-attention equation on S^{d-1},

.. math::

    X[\\mu](x) = P_x^\\perp \\frac{\\int e^{\\beta \\langle Qx, Ky\\rangle} V y \\, d\\mu(y)}
                              {Z[\\mu](x)},
    \\qquad P_x^\\perp y = y - \\langle x, y\\rangle x,

with :math:`Z = \\int e^{\\beta\\langle Qx,Ky\\rangle} d\\mu(y)` (SA, ``normalized=True``) or
:math:`Z = 1` (USA, ``normalized=False``). Only :math:`A = Q^T K` enters the kernel, since
:math:`\\langle Qx, Ky\\rangle = \\langle x, A y\\rangle`.

LoRA (PEFT convention): a rank-r update :math:`\\Delta = (\\alpha/r) B A_{lora}` with
:math:`B \\in R^{d\\times r}`, :math:`A_{lora} \\in R^{r\\times d}`, added to V (or Q, K).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .checks import check_array, check_choice, check_flag, check_integer, check_real, check_seed

__all__ = ["Attention", "lora_update", "lora_factors", "random_model"]


def _matrix(value, d: int, name: str) -> np.ndarray:
    """Validated read-only float64 copy of a d x d matrix of real numbers (identity when
    ``value`` is None); ragged, string or boolean input is an error naming ``name``."""
    if value is None:
        out = np.eye(d)
    else:
        out = check_array(value, name)
        if out.shape != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}) for d={d}, got {out.shape}")
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Attention:
    """Self-attention dynamics on the unit sphere S^{d-1} (immutable).

    Parameters
    ----------
    beta : float
        Inverse temperature, ``beta >= 0``.
    d : int
        Ambient dimension (tokens live on S^{d-1}); ``d >= 2``.
    Q, K, V : array_like (d, d), optional
        Query, key and value matrices; identity by default.
    normalized : bool
        True for softmax attention (SA), False for the unnormalised variant (USA).
    causal : bool
        Causal mask (docs/design.md, "Causal masks"): token i attends to the tokens j <= i,
        the row order of the particles' points. SA normalises over j <= i; USA divides by
        the weight of the prefix, sum_{j <= i} w_j (1/i for equal weights), so that token i
        is moved by the USA field of the probability measure of its prefix, the
        (1/s) int_0^s mu_{s'} ds' of the mean-field limit.
    """

    beta: float = 1.0
    d: int = 3
    Q: np.ndarray | None = None
    K: np.ndarray | None = None
    V: np.ndarray | None = None
    normalized: bool = True
    causal: bool = False
    A: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        d = check_integer(self.d, "d", low=2)
        beta = check_real(self.beta, "beta", low=0)
        check_flag(self.normalized, "normalized")
        check_flag(self.causal, "causal")
        Q, K, V = (_matrix(getattr(self, n), d, n) for n in "QKV")
        A = Q.T @ K
        A.setflags(write=False)
        for name, value in (("d", d), ("beta", beta), ("Q", Q), ("K", K), ("V", V),
                            ("A", A), ("normalized", bool(self.normalized)),
                            ("causal", bool(self.causal))):
            object.__setattr__(self, name, value)

    def perturbed(self, *, V=None, Q=None, K=None) -> "Attention":
        """Model with additive updates: ``V + V_update`` (and likewise Q, K).

        The updates are d x d arrays, e.g. from :func:`lora_update`.
        """
        kw = {}
        for name, delta in (("Q", Q), ("K", K), ("V", V)):
            base = getattr(self, name)
            kw[name] = base if delta is None else base + _matrix(delta, self.d, f"{name} update")
        return Attention(beta=self.beta, d=self.d, normalized=self.normalized,
                         causal=self.causal, **kw)

    def unmasked(self) -> "Attention":
        """The same model without the causal mask (itself when it has none)."""
        if not self.causal:
            return self
        return Attention(beta=self.beta, d=self.d, Q=self.Q, K=self.K, V=self.V,
                         normalized=self.normalized)

    @property
    def name(self) -> str:
        """'SA' (softmax attention) or 'USA' (unnormalised)."""
        return "SA" if self.normalized else "USA"

    def __repr__(self) -> str:
        def show(m):
            return "I" if np.array_equal(m, np.eye(self.d)) else f"<{self.d}x{self.d}>"
        mask = ", causal" if self.causal else ""
        return (f"Attention({self.name}{mask}, beta={self.beta:g}, d={self.d}, Q={show(self.Q)}, "
                f"K={show(self.K)}, V={show(self.V)})")

    def to_dict(self) -> dict:
        """Plain-data description (for metadata in output files); ``causal`` appears only
        when True, so unmasked models keep the description (and run fingerprints) of earlier
        versions."""
        out = {"beta": self.beta, "d": self.d, "normalized": self.normalized,
               "Q": self.Q.tolist(), "K": self.K.tolist(), "V": self.V.tolist()}
        if self.causal:
            out["causal"] = True
        return out


_TARGETS = ("V", "Q", "K")


def lora_factors(d: int, rank: int, norm: float | None, target: str = "V", seed=0, alpha=None):
    """Random LoRA factors ``(B, A, scale)`` with ``scale * B @ A`` of spectral norm ``norm``.

    ``B`` (d x r) and ``A`` (r x d) have iid standard normal entries (seeded). In the PEFT
    convention the update is ``(alpha / r) B A``; ``alpha`` is chosen here so that the update
    has the requested spectral norm, and ``scale = alpha / r`` is returned. If ``alpha`` is
    given, it is used as is and ``norm`` must be None.
    """
    d = check_integer(d, "d", low=2)
    rank = check_integer(rank, f"rank (d={d})", low=1, high=d)
    check_choice(target, "target", _TARGETS)
    check_seed(seed)
    if alpha is None:
        if norm is None:
            raise ValueError("norm must be given (a finite number >= 0), or alpha")
        norm = check_real(norm, "norm", low=0)
    else:
        if norm is not None:
            raise ValueError("give either norm or alpha, not both")
        alpha = check_real(alpha, "alpha")
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((d, rank))
    A = rng.standard_normal((rank, d))
    scale = norm / np.linalg.norm(B @ A, 2) if alpha is None else alpha / rank
    return B, A, float(scale)


def lora_update(d: int, rank: int = 1, norm: float | None = None, target: str = "V", seed=0,
                alpha=None) -> np.ndarray:
    """Random rank-``rank`` LoRA update ``Delta = (alpha/r) B A`` with ``||Delta||_2 = norm``.

    Parameters
    ----------
    d : int
        Dimension; the update is d x d.
    rank : int
        LoRA rank r, ``1 <= r <= d``.
    norm : float
        Requested spectral norm of Delta (``alpha`` is set accordingly).
    target : {"V", "Q", "K"}
        Which matrix the update is meant for (validated; use it as
        ``model.perturbed(**{target: delta})``).
    seed : int or numpy Generator
        Seed of the Gaussian factors B, A.
    alpha : float, optional
        PEFT scaling used as is (then ``norm`` must be None).

    Returns
    -------
    ndarray (d, d)
    """
    B, A, scale = lora_factors(d, rank, norm, target=target, seed=seed, alpha=alpha)
    return scale * (B @ A)


def random_model(d: int, beta: float = 1.0, normalized: bool = True, seed=0) -> Attention:
    """Attention with random Q, K, V: iid N(0, 1/d) entries (so ||Q^T K|| and ||V|| stay O(1)
    in every d), drawn in the order Q, K, V from ``numpy.random.default_rng(seed)`` (``seed``
    may be a Generator, which is then advanced)."""
    rng = np.random.default_rng(seed)
    Q, K, V = (rng.standard_normal((d, d)) / np.sqrt(d) for _ in range(3))
    return Attention(beta=beta, d=d, Q=Q, K=K, V=V, normalized=normalized)
