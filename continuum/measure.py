"""Measures on the sphere as weighted point clouds.

A particle system is N points with weights 1/N; a continuum density is its quadrature nodes
with weights rho(x_j) w_j. Everything that acts on measures (field, moments, energies,
distances, plots) takes a :class:`Measure`, so it works for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import as_real_array
from .family import check_family
from .geometry import check_on_sphere
from .kernels import attention_field, interaction_energy

__all__ = ["Measure", "check_measure", "check_measure_pair"]

#: tolerance on sum(weights) = 1
MASS_TOL = 1e-10


@dataclass(frozen=True, eq=False)
class Measure:
    """Probability measure mu = sum_j w_j delta_{x_j} on S^{d-1} (immutable).

    Parameters
    ----------
    points : array_like (M, d)
        Points on the unit sphere (|x| = 1 to ``geometry.SPHERE_TOL``).
    weights : array_like (M,), optional
        Non-negative weights summing to 1 (to ``MASS_TOL``); uniform 1/M by default.
    """

    points: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self):
        x = np.array(as_real_array(self.points, "points"), copy=True)
        if x.ndim != 2 or x.shape[1] < 2 or x.shape[0] < 1:
            raise ValueError(f"points must have shape (M, d) with M >= 1, d >= 2; got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("points have non-finite entries (NaN or inf)")
        check_on_sphere(x, "points")
        if self.weights is None:
            w = np.full(x.shape[0], 1.0 / x.shape[0])
        else:
            w = np.array(as_real_array(self.weights, "weights"), copy=True)
            if w.shape != (x.shape[0],):
                raise ValueError(f"weights must have shape ({x.shape[0]},) to match points, "
                                 f"got {w.shape}")
            if not np.all(np.isfinite(w)):
                raise ValueError("weights have non-finite entries (NaN or inf)")
            if np.any(w < 0):
                raise ValueError(f"weights must be non-negative (min weight {w.min():.3g})")
            if abs(w.sum() - 1.0) > MASS_TOL:
                raise ValueError(f"weights must sum to 1 (a probability measure), "
                                 f"they sum to {w.sum():.15g}")
        x.setflags(write=False)
        w.setflags(write=False)
        object.__setattr__(self, "points", x)
        object.__setattr__(self, "weights", w)

    @property
    def d(self) -> int:
        """Ambient dimension (the measure lives on S^{d-1})."""
        return self.points.shape[1]

    @property
    def size(self) -> int:
        """Number of atoms M."""
        return self.points.shape[0]

    def __len__(self) -> int:
        return self.size

    def mean(self) -> np.ndarray:
        """Mean vector m = int x dmu(x), shape (d,)."""
        return self.weights @ self.points

    def order_parameter(self) -> float:
        """r = |int x dmu|: 0 for the uniform measure, 1 for a single Dirac."""
        return float(np.linalg.norm(self.mean()))

    def second_moment(self) -> np.ndarray:
        """Second moment int x x^T dmu, shape (d, d), trace 1."""
        return (self.points * self.weights[:, None]).T @ self.points

    def interaction_energy(self, model) -> float:
        """(1/(2 beta)) int int (e^{beta <Qx,Ky>} - 1) dmu dmu; see kernels.interaction_energy."""
        check_family(model, d=self.d, layers=False)
        return interaction_energy(self.points, self.weights, model)

    def field(self, model, targets=None) -> np.ndarray:
        """Attention field X[mu] at ``targets`` (default: at the atoms), by
        :func:`continuum.kernels.attention_field`."""
        targets = self.points if targets is None else targets
        return attention_field(targets, self.points, self.weights, model)


def check_measure(value, name: str, d: int | None = None) -> "Measure":
    """``value`` if it is a :class:`Measure` (on S^{d-1} when ``d`` is given), else TypeError
    (ValueError for the wrong sphere) naming ``name``: an array of points is not a measure
    (wrap it, ``Measure(points)``, for weights 1/M)."""
    if not isinstance(value, Measure):
        hint = "; wrap an array of points as Measure(points) for weights 1/M" \
            if isinstance(value, np.ndarray) else ""
        raise TypeError(f"{name} must be a Measure, got {type(value).__name__}{hint}")
    if d is not None and value.d != d:
        raise ValueError(f"{name} must be a measure on S^{d - 1} (d={d}), got d={value.d}")
    return value


def check_measure_pair(mu, nu, mu_name: str = "mu", nu_name: str = "nu") -> None:
    """Both arguments Measures on the same sphere (else an error naming them)."""
    check_measure(mu, mu_name)
    check_measure(nu, nu_name)
    if mu.d != nu.d:
        raise ValueError(f"{mu_name} and {nu_name} live in different dimensions: d={mu.d} and "
                         f"d={nu.d}")
