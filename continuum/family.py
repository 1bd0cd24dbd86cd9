"""The model family: several heads (:class:`MultiHead`) and weights that change with depth
(:class:`Layers`), and the two questions every solver asks of a model.

Several heads. With heads h = 1..H, each an :class:`~continuum.model.Attention` with its own
beta_h, Q_h, K_h, V_h and normalisation (SA or USA), all of one d, the field is

.. math::

    X[\\mu](x) = \\sum_h w_h X_h[\\mu](x), \\qquad w_h = 1 \\ (\\text{combine="sum"})
    \\text{ or } 1/H \\ (\\text{combine="mean"}),

X_h the single-head field of ``continuum.model``. Depth. ``Layers([m_0, ..., m_{n-1}], tau)``
runs m_k on [k tau, (k + 1) tau) and the last model from (n - 1) tau on, for the rest of the
run (each m_k an Attention or a MultiHead).

The protocol (one answer per model kind, no special case per solver):

* :func:`heads_of` ``(model)``: the list of (w_h, head) whose weighted sum is the field
  (an Attention: [(1, model)]). The field, its fast paths and the solvers' precomputations
  (FFT kernels, Funk-Hecke multipliers, DG tables) are built head by head and summed.
* :func:`model_at` ``(model, t)``: the model in force at time t and the next switch time
  (Attention and MultiHead: themselves, inf). The time loops land on every switch (no step
  crosses one) and ask again there.

Scales and bounds of a MultiHead add over heads (the Jacobian, and a Lipschitz constant, of a
sum is at most the sum); those of Layers are the largest over the layers (a bound that holds
on every layer holds on the run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .checks import check_choice, check_integer, check_real, check_seed
from .model import Attention, lora_update, random_model

__all__ = ["MultiHead", "Layers", "heads_of", "model_at", "switch_times", "check_family",
           "sum_heads", "layers_of", "dominant_head", "Schedule", "COMBINE"]

COMBINE = ("sum", "mean")


def _check_models(values, name: str, allowed: tuple, what: str) -> tuple:
    """``values`` as a non-empty tuple of models of the ``allowed`` types and one d."""
    if isinstance(values, (Attention, MultiHead, Layers, str, bytes)) or not hasattr(
            values, "__iter__"):
        raise TypeError(f"{name} must be a list of {what}, got {type(values).__name__}")
    out = tuple(values)
    if not out:
        raise ValueError(f"{name} must hold at least one {what.rstrip('s')}, got an empty list")
    for i, m in enumerate(out):
        if not isinstance(m, allowed):
            raise TypeError(f"{name}[{i}] must be {' or '.join(t.__name__ for t in allowed)}, "
                            f"got {type(m).__name__}")
        if m.d != out[0].d:
            raise ValueError(f"{name}[{i}] has d={m.d} but {name}[0] has d={out[0].d}: all "
                             f"must live on one sphere")
    return out


@dataclass(frozen=True, eq=False)
class MultiHead:
    """Several attention heads acting together (immutable): X = sum_h w_h X_h.

    Parameters
    ----------
    heads : list of Attention
        The heads, all of one d; each has its own beta, Q, K, V and SA/USA.
    combine : {"sum", "mean"}
        w_h = 1 ("sum") or 1/H ("mean").
    """

    heads: tuple
    combine: str = "sum"
    d: int = field(init=False)
    weights: tuple = field(init=False, repr=False)

    def __post_init__(self):
        heads = _check_models(self.heads, "heads", (Attention,), "Attention heads")
        check_choice(self.combine, "combine", COMBINE)
        w = 1.0 if self.combine == "sum" else 1.0 / len(heads)
        object.__setattr__(self, "heads", heads)
        object.__setattr__(self, "d", heads[0].d)
        object.__setattr__(self, "weights", (w,) * len(heads))

    def perturbed(self, head: int = 0, *, V=None, Q=None, K=None) -> "MultiHead":
        """The model with head ``head`` replaced by ``heads[head].perturbed(V=..., Q=..., K=...)``
        (the other heads unchanged)."""
        head = check_integer(head, f"head (one of 0..{len(self.heads) - 1})", low=0,
                             high=len(self.heads) - 1)
        heads = list(self.heads)
        heads[head] = heads[head].perturbed(V=V, Q=Q, K=K)
        return MultiHead(heads, combine=self.combine)

    @property
    def name(self) -> str:
        return f"MultiHead({len(self.heads)} heads, {self.combine})"

    def __len__(self) -> int:
        return len(self.heads)

    def __repr__(self) -> str:
        return f"MultiHead([{', '.join(map(repr, self.heads))}], combine={self.combine!r})"

    def to_dict(self) -> dict:
        return {"kind": "MultiHead", "combine": self.combine,
                "heads": [h.to_dict() for h in self.heads]}


@dataclass(frozen=True, eq=False)
class Layers:
    """Weights that change with depth (immutable): ``models[k]`` acts on [k tau, (k+1) tau),
    the last one from (n - 1) tau on for the rest of the run.

    Parameters
    ----------
    models : list of Attention or MultiHead
        One model per layer, all of one d.
    layer_time : float
        tau > 0, the time (depth) of one layer.
    """

    models: tuple
    layer_time: float = 1.0
    d: int = field(init=False)

    def __post_init__(self):
        models = _check_models(self.models, "models", (Attention, MultiHead),
                               "models (Attention or MultiHead)")
        tau = check_real(self.layer_time, "layer_time", low=0, low_open=True)
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "layer_time", tau)
        object.__setattr__(self, "d", models[0].d)

    def switch(self, k: int) -> float:
        """The start k tau of layer k (the switch times are these products, exactly)."""
        return k * self.layer_time

    def at(self, t: float):
        """(models[k], next switch time) with k tau <= t < (k + 1) tau (the last model and inf
        from (n - 1) tau on; the first model before 0)."""
        n = len(self.models)
        k = int(min(max(math.floor(t / self.layer_time), 0), n - 1))
        while k + 1 < n and self.switch(k + 1) <= t:  # floor's rounding, both ways
            k += 1
        while k > 0 and self.switch(k) > t:
            k -= 1
        return self.models[k], (self.switch(k + 1) if k + 1 < n else math.inf)

    def __len__(self) -> int:
        return len(self.models)

    @property
    def name(self) -> str:
        return f"Layers({len(self.models)} layers, tau={self.layer_time:g})"

    def __repr__(self) -> str:
        return f"Layers({len(self.models)} models, layer_time={self.layer_time:g})"

    def to_dict(self) -> dict:
        return {"kind": "Layers", "layer_time": self.layer_time,
                "models": [m.to_dict() for m in self.models]}

    @classmethod
    def random(cls, d: int, n_layers: int, seed=0, beta: float = 1.0, normalized: bool = True,
               layer_time: float = 1.0, base: Attention | None = None, lora_rank=None,
               lora_norm=None, lora_target: str = "V") -> "Layers":
        """Fresh weights per layer, from one ``numpy.random.default_rng(seed)``.

        Without ``lora_rank``: layer k is ``continuum.model.random_model(d, beta,
        normalized)`` (iid N(0, 1/d) entries of Q, K, V, drawn layer after layer). With
        ``lora_rank`` r and ``lora_norm`` eta: layer k is ``base.perturbed(**{lora_target:
        Delta_k})`` with a fresh rank-r LoRA update Delta_k of spectral norm eta
        (``lora_update``) on the fixed ``base`` (default ``Attention(beta, d, normalized)``),
        the regime of random per-layer adapters.
        """
        d = check_integer(d, "d", low=2)
        n_layers = check_integer(n_layers, "n_layers", low=1)
        check_seed(seed)
        rng = np.random.default_rng(seed)
        if lora_rank is None:
            if lora_norm is not None or base is not None:
                raise ValueError("lora_norm and base go with lora_rank (fresh adapters on a "
                                 "fixed base); give lora_rank or neither")
            models = [random_model(d, beta=beta, normalized=normalized, seed=rng)
                      for _ in range(n_layers)]
        else:
            if lora_norm is None:
                raise ValueError("lora_norm (the spectral norm of each layer's adapter) must "
                                 "be given with lora_rank")
            if base is None:
                base = Attention(beta=beta, d=d, normalized=normalized)
            elif not isinstance(base, Attention) or base.d != d:
                raise TypeError(f"base must be an Attention with d={d}, got {base!r}")
            models = [base.perturbed(**{lora_target: lora_update(
                d, lora_rank, lora_norm, target=lora_target, seed=rng)})
                for _ in range(n_layers)]
        return cls(models, layer_time=layer_time)


def check_family(model, name: str = "model", d: int | None = None, layers: bool = True):
    """``model`` if it is an Attention, a MultiHead or (with ``layers``) a Layers, of
    dimension ``d`` when given; else TypeError (ValueError for the wrong d) naming ``name``."""
    allowed = (Attention, MultiHead, Layers) if layers else (Attention, MultiHead)
    if not isinstance(model, allowed):
        raise TypeError(f"{name} must be {', '.join(t.__name__ for t in allowed[:-1])} or "
                        f"{allowed[-1].__name__}, got {type(model).__name__}")
    if d is not None and model.d != d:
        raise ValueError(f"{name} must have d={d}, got d={model.d}")
    return model


def heads_of(model) -> list:
    """[(w_h, head), ...]: the Attention heads whose weighted sum is the field of ``model``
    (an Attention: [(1.0, model)]). A Layers has no heads of its own (TypeError: ask
    :func:`model_at` for the model in force)."""
    if isinstance(model, Attention):
        return [(1.0, model)]
    if isinstance(model, MultiHead):
        return list(zip(model.weights, model.heads))
    if isinstance(model, Layers):
        raise TypeError("a Layers model has no heads of its own: the model in force at time t "
                        "is model_at(model, t)[0]")
    check_family(model)


def sum_heads(model, evaluate):
    """sum_h w_h evaluate(head) over :func:`heads_of` (model): the per-head loop of every
    quantity linear in the field."""
    total = None
    for w, head in heads_of(model):
        value = evaluate(head)
        total = w * value if total is None else total + w * value
    return total


def model_at(model, t: float):
    """(the model in force at time t, the next switch time): an Attention or a MultiHead is
    in force at all times (inf); a Layers answers :meth:`Layers.at`."""
    if isinstance(model, Layers):
        return model.at(t)
    check_family(model)
    return model, math.inf


def layers_of(model) -> tuple:
    """The models a run of ``model`` may use (the layers of a Layers, else the model)."""
    return check_family(model).models if isinstance(model, Layers) else (model,)


def switch_times(model, T: float) -> np.ndarray:
    """The switch times of ``model`` in (0, T), increasing (empty for Attention, MultiHead)."""
    out, t = [], 0.0
    while True:
        t = model_at(model, t)[1]
        if not t < T:
            return np.array(out)
        out.append(t)


def dominant_head(model, field_scale):
    """(label, head): the head with the largest weighted scale w_h field_scale(head) over all
    heads and layers of ``model`` (``continuum.timestep.field_scale``), named "layer k,
    head h" (for the messages of a run whose step collapses)."""
    best = None
    for k, m in enumerate(layers_of(model)):
        for h, (w, head) in enumerate(heads_of(m)):
            label = ", ".join(([f"layer {k}"] if isinstance(model, Layers) else [])
                              + ([f"head {h}"] if isinstance(m, MultiHead) else []))
            if best is None or w * field_scale(head) > best[0]:
                best = (w * field_scale(head), label, head)
    return best[1], best[2]


class Schedule:
    """The model in force along a run, for the time loops: ``switch(t)`` makes the model in
    force at t the ``current`` one, with ``built = make(current)`` (the solver's
    precomputation for it: a field, an operator; the last few kept), and returns the next
    switch time (inf: none). Constructed at t = 0."""

    def __init__(self, model, make=lambda m: m):
        self.model, self.make, self._built = model, make, {}
        self.switch(0.0)

    def switch(self, t: float) -> float:
        current, t_next = model_at(self.model, t)
        if id(current) not in self._built:
            if len(self._built) >= 8:
                self._built.clear()
            self._built[id(current)] = self.make(current)
        self.current, self.built = current, self._built[id(current)]
        return t_next
