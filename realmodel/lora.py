"""LoRA on a BERT encoder: configuration, factors, dense updates, random controls, scaling.

PEFT convention (docs/design.md, section 1): a target matrix W (stored (out, in)) of a chosen
layer becomes

.. math::

    W \\to W + \\Delta, \\qquad \\Delta = \\frac{\\alpha}{r} B A, \\qquad
    B \\in R^{out \\times r} \\text{ (zeros at init)}, \\quad
    A \\in R^{r \\times in} \\text{ (random at init)},

so the model starts exactly at the base model. As in PEFT, A is initialised by Kaiming-uniform
with a = sqrt(5), i.e. iid :math:`U(-1/\\sqrt{in}, 1/\\sqrt{in})`.

LoRA parameters are a plain dict ``{"<layer>.<target>": {"A": (r, in), "B": (out, r)}}`` of
numpy arrays (layers counted from 0, targets "Q", "K", "V"), which JAX takes as a pytree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LoraConfig", "TARGETS", "lora_key", "init_lora", "dense_updates", "random_control",
           "haar_frame", "scale_lora", "lora_norms", "merge_lora"]

#: matrices LoRA may target (attention query, key, value)
TARGETS = ("Q", "K", "V")


def lora_key(layer: int, target: str) -> str:
    """Key of one adapted matrix in the LoRA parameter dict: ``"<layer>.<target>"``."""
    return f"{int(layer)}.{target}"


@dataclass(frozen=True)
class LoraConfig:
    """Which matrices get a LoRA update, and its rank and scale (hashable: JAX takes it as a
    static argument).

    Parameters
    ----------
    rank : int
        r >= 1.
    alpha : float
        Scale numerator; the update is (alpha / r) B A.
    layers : tuple of int
        Adapted layers, counted from 0 (checked against the model by :func:`init_lora`).
    targets : tuple of str
        Subset of ("Q", "K", "V"); default ("V",).
    """

    rank: int
    alpha: float
    layers: tuple
    targets: tuple = ("V",)

    def __post_init__(self):
        if isinstance(self.rank, bool) or not isinstance(self.rank, (int, np.integer)) \
                or self.rank < 1:
            raise ValueError(f"rank must be an integer >= 1, got {self.rank!r}")
        object.__setattr__(self, "rank", int(self.rank))
        try:
            alpha = float(self.alpha)
        except (TypeError, ValueError):
            raise ValueError(f"alpha must be a real number, got {self.alpha!r}") from None
        if not np.isfinite(alpha):
            raise ValueError(f"alpha must be finite, got {self.alpha!r}")
        object.__setattr__(self, "alpha", alpha)
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        if not targets or any(t not in TARGETS for t in targets) or len(set(targets)) < len(
                targets):
            raise ValueError(f"targets must be distinct entries of {TARGETS}, got "
                             f"{self.targets!r}")
        object.__setattr__(self, "targets", tuple(t for t in TARGETS if t in targets))
        layers = (self.layers,) if isinstance(self.layers, (int, np.integer)) else tuple(
            self.layers)
        if not layers or any(isinstance(i, bool) or not isinstance(i, (int, np.integer))
                             or i < 0 for i in layers) or len(set(layers)) < len(layers):
            raise ValueError(f"layers must be distinct integers >= 0 (counted from 0), got "
                             f"{self.layers!r}")
        object.__setattr__(self, "layers", tuple(sorted(int(i) for i in layers)))

    @property
    def scale(self) -> float:
        """alpha / r."""
        return self.alpha / self.rank

    def keys(self) -> list:
        """Keys of the adapted matrices, ``"<layer>.<target>"``, layer-major."""
        return [lora_key(i, t) for i in self.layers for t in self.targets]

    def check(self, weights) -> None:
        """ValueError naming ``layers`` or ``rank`` if they do not fit the model."""
        bad = [i for i in self.layers if i >= weights.n_layers]
        if bad:
            raise ValueError(f"layers {bad} do not exist: the model has layers 0 .. "
                             f"{weights.n_layers - 1}")
        if self.rank > weights.hidden:
            raise ValueError(f"rank must be <= the hidden size {weights.hidden}, got {self.rank}")


def init_lora(config: LoraConfig, weights, seed=0, dtype=np.float32) -> dict:
    """LoRA parameters at initialisation: B = 0, A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's
    Kaiming-uniform, a = sqrt(5)), drawn key by key (:meth:`LoraConfig.keys` order) from
    ``numpy.random.default_rng(seed)``."""
    config.check(weights)
    rng = np.random.default_rng(seed)
    H, r = weights.hidden, config.rank
    bound = 1.0 / np.sqrt(H)
    return {key: {"A": rng.uniform(-bound, bound, size=(r, H)).astype(dtype),
                  "B": np.zeros((H, r), dtype=dtype)}
            for key in config.keys()}


def _check_lora(lora, config: LoraConfig) -> None:
    if not isinstance(lora, dict) or sorted(lora) != sorted(config.keys()):
        got = sorted(lora) if isinstance(lora, dict) else type(lora).__name__
        raise ValueError(f"lora must be a dict with keys {config.keys()} (from the config), "
                         f"got {got}")
    for key, ab in lora.items():
        A, B = np.shape(ab["A"]), np.shape(ab["B"])
        if len(A) != 2 or len(B) != 2 or A[0] != config.rank or B[1] != config.rank:
            raise ValueError(f"lora[{key!r}] must have A (r, in) and B (out, r) with r = "
                             f"{config.rank}, got A {A}, B {B}")


def dense_updates(lora: dict, config: LoraConfig) -> dict:
    """{key: Delta = (alpha / r) B A}, float64 (out, in)."""
    _check_lora(lora, config)
    return {key: config.scale * (np.asarray(ab["B"], np.float64) @ np.asarray(ab["A"],
                                                                              np.float64))
            for key, ab in lora.items()}


def lora_norms(lora: dict, config: LoraConfig) -> dict:
    """{key: {"fro": ||Delta||_F, "spectral": ||Delta||_2, "nuclear": ||Delta||_*}}."""
    out = {}
    for key, delta in dense_updates(lora, config).items():
        s = np.linalg.svd(delta, compute_uv=False)
        out[key] = {"fro": float(np.sqrt(np.sum(s ** 2))), "spectral": float(s[0]),
                    "nuclear": float(s.sum())}
    return out


def haar_frame(rng, n: int, r: int) -> np.ndarray:
    """n x r matrix with orthonormal columns, Haar-distributed (QR of a Gaussian matrix with
    the signs of R's diagonal fixed)."""
    q, rr = np.linalg.qr(rng.standard_normal((n, r)))
    return q * np.where(np.diag(rr) < 0, -1.0, 1.0)


def random_control(lora: dict, config: LoraConfig, seed=0, dtype=np.float32) -> dict:
    """A random update of the same rank and size as a trained one, per adapted matrix.

    For each key, with the trained :math:`\\Delta = U \\Sigma V^T` (top r singular values
    :math:`\\sigma_1 \\ge \\dots \\ge \\sigma_r`), the control is
    :math:`\\tilde\\Delta = \\tilde U \\Sigma \\tilde V^T` with :math:`\\tilde U`,
    :math:`\\tilde V` independent Haar-random orthonormal r-frames. So
    :math:`\\tilde\\Delta` has rank <= r and exactly the singular values of
    :math:`\\Delta`: the same Frobenius norm, and also the same spectral and nuclear norm (every
    unitarily invariant norm); only its directions are random. Returned as LoRA factors
    (``B = U Sigma / (alpha/r)``, ``A = V^T``) so it runs through the LoRA forward path.
    Frames are drawn key by key (:meth:`LoraConfig.keys` order) from
    ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for key, delta in dense_updates(lora, config).items():
        sigma = np.linalg.svd(delta, compute_uv=False)[:config.rank]
        U = haar_frame(rng, delta.shape[0], config.rank)
        V = haar_frame(rng, delta.shape[1], config.rank)
        scale = config.scale if config.scale != 0 else 1.0
        out[key] = {"A": V.T.astype(dtype), "B": (U * sigma / scale).astype(dtype)}
    return out


def scale_lora(lora: dict, s: float) -> dict:
    """LoRA parameters whose update is s times the given one (B -> s B; A unchanged)."""
    s = float(s)
    if not np.isfinite(s):
        raise ValueError(f"s must be finite, got {s!r}")
    return {key: {"A": np.array(ab["A"]), "B": np.asarray(ab["B"]) * np.asarray(
        s, dtype=np.asarray(ab["B"]).dtype)} for key, ab in lora.items()}


def merge_lora(weights, lora: dict, config: LoraConfig):
    """BertWeights with every adapted matrix replaced by W + Delta (the dense form of the LoRA
    model), summed in float64 and cast back to the weights' dtype."""
    config.check(weights)
    merged = weights
    for key, delta in dense_updates(lora, config).items():
        layer, target = key.split(".")
        W = getattr(weights.layers[int(layer)], f"W_{target}")
        merged = merged.replace_layer(int(layer), **{f"W_{target}": (
            np.asarray(W, np.float64) + delta).astype(W.dtype)})
    return merged
