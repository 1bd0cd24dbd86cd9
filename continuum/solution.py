"""The common result of every continuum solver."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .family import model_at
from .invariants import check_result
from .kernels import log_kernel_mean
from .measure import Measure

__all__ = ["Solution", "finish_solution"]


@dataclass(frozen=True, eq=False)
class Solution:
    """Density on a solver's nodes at saved times.

    Attributes
    ----------
    times : ndarray (nt,)
    points : ndarray (M, d)
        The solver's nodes (grid points, cell centroids, ...), on the unit sphere.
    quadrature : ndarray (M,)
        Surface-measure weights of the nodes (sum = area of the discrete sphere).
    densities : ndarray (nt, M)
        Nodal density values w.r.t. the surface measure (cell averages for finite volumes).
    diagnostics : dict of ndarray (nt,)
        Recorded along the run: ``mass`` (int rho, before normalisation), ``order_parameter``
        |int x dmu|, ``energy`` (see kernels.interaction_energy), ``log_kernel_mean``
        (log int int e^{beta <Qx,Ky>} dmu dmu, computed in log space: finite where the energy
        exceeds float64, E = expm1(log_kernel_mean) / (2 beta)), ``min_density``. For a
        MultiHead the energy is sum_h w_h E_h and log_kernel_mean NaN (no single kernel); for
        Layers both are those of the layer in force at the saved time.
    info : dict
        Solver, resolution, step counts, the initial rescaling factor, ...; an under-resolved
        run (``on_unresolved="warn"``, or the partial Solution of ``UnderResolved``) has
        ``under_resolved_from``, ``under_resolved`` and ``under_resolved_remedy`` (and
        ``stopped_at`` when it stopped early); ``resolution="auto"`` adds
        ``error_estimate``, ``resolutions``, ``differences`` and ``observed_order``.
    model : Attention, MultiHead or Layers
    """

    times: np.ndarray
    points: np.ndarray
    quadrature: np.ndarray
    densities: np.ndarray
    diagnostics: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    model: object = None

    def __len__(self) -> int:
        return len(self.times)

    def density(self, i: int) -> np.ndarray:
        """Nodal density values at saved time ``times[i]``."""
        return self.densities[i]

    def measure(self, i: int) -> Measure:
        """Measure at saved time i: the nodes with weights max(rho_j, 0) w_j / total.

        Negative nodal values (possible for the spectral method between resolved and
        under-resolved states) are clipped before normalising; the clipped mass is
        ``info['clipped_mass'][i]``. Finite-volume cell averages are never negative.
        """
        masses = np.maximum(self.densities[i], 0.0) * self.quadrature
        return Measure(self.points, masses / masses.sum())


def finish_solution(model, times, points, quadrature, densities, info,
                    positive: bool = False) -> Solution:
    """Diagnostics at the saved times and the immutable Solution, after the invariants of
    :func:`continuum.invariants.check_result` (finite, on the sphere, non-negative quadrature,
    and densities when the scheme promises it (``positive``), the saved times as requested,
    the mass conserved to its round-off bound over ``info["steps"]`` steps, or
    ``info["nfev"]`` right-hand sides).

    ``times`` are the requested saved times; ``densities`` may hold fewer rows only when the
    solver stopped an under-resolved run early (``info["under_resolved_from"]``): the
    Solution then holds the saved times reached (``info["stopped_at"]``)."""
    stopped = len(densities) < len(times) and "under_resolved_from" in info
    if stopped:
        info["stopped_at"] = float(times[len(densities) - 1])
    label = f"{info.get('method')} solver at resolution {info.get('resolution')}"
    check_result(label, times[: len(densities)] if stopped else times, times, points,
                 densities=densities, quadrature=quadrature, positive=positive,
                 steps=int(info.get("steps", info.get("nfev", 0))), stopped=stopped)
    times = np.array(times[: len(densities)])
    mass = densities @ quadrature
    clipped = np.maximum(-densities, 0.0) @ quadrature
    order, energy, log_mean = [], [], []
    for t, rho in zip(times, densities):
        masses = np.maximum(rho, 0.0) * quadrature
        mu = Measure(points, masses / masses.sum())
        order.append(mu.order_parameter())
        in_force = model_at(model, t)[0]  # a Layers: the layer in force at the saved time
        energy.append(mu.interaction_energy(in_force))
        log_mean.append(log_kernel_mean(mu.points, mu.weights, in_force, energy[-1]))
    diagnostics = {"mass": mass, "order_parameter": np.array(order),
                   "energy": np.array(energy), "log_kernel_mean": np.array(log_mean),
                   "min_density": densities.min(axis=1)}
    info["clipped_mass"] = clipped
    for a in (times, points, quadrature, densities, *diagnostics.values()):
        a.setflags(write=False)
    return Solution(times=times.copy(), points=points, quadrature=quadrature,
                    densities=densities, diagnostics=diagnostics, info=info, model=model)
