"""Mean-field attention on S^2 with the DOLFINx DG discretisation (``solve(method="fem")``).

At every Runge-Kutta stage the attention field is evaluated (by the Numba kernel, or for a
zonal kernel Q^T K = c R by its spherical-harmonic expansion, ``continuum.sphere.harmonic``) at
the mesh vertices (where the vector-P1 velocity lives) from the quadrature measure of the current
density (points = quadrature points of the cells projected to S^2, weights =
max(rho, 0) |K| w_q; see ``SphereDG.quadrature_measure``), and handed to the DG form as a
Function. Everything else is ``continuum.sphere.dg``: upwind DG_p, SSP-RK3, Zhang-Shu limiter.

The returned Solution holds cell averages (non-negative with the limiter) at the cell
centroids projected to S^2; ``measure(i)`` is the cell masses at those centroids. Under MPI
every rank returns the same Solution (gathered, in the serial cell order).

Under-resolution (:mod:`continuum.resolution`), checked at every saved time on the gathered
cell masses, as the finite volumes on S^1 do: a cluster narrower than a cell, one triangle
holding at least 1e-3 of the mass and more than ``cluster_fraction`` (default 0.9) of the mass
of itself and its three edge neighbours (``resolution.cluster_unresolved``; a Dirac-like
cluster inside a triangle puts all of its neighbourhood's mass there, while a resolved bump
spreads over several cells). With ``on_unresolved="raise"`` (the default) the run stops at
that saved time and raises ``continuum.UnderResolved`` holding the partial Solution; the
remedy is a finer mesh (a higher level) or ``resolution="auto"``.
"""

from __future__ import annotations

import contextlib
import time as _time
from pathlib import Path

import numpy as np

from ..checks import check_flag, check_integer, check_output_path, check_real
from ..family import Schedule, heads_of, layers_of, sum_heads
from ..initial import check_times, check_total_mass, evaluate_density
from ..kernels import attention_field
from ..model import Attention
from ..resolution import GRID_REMEDY, check_on_unresolved, cluster_unresolved, settle_resolution
from ..solution import finish_solution
from ..timestep import MAX_STEPS, collapse_reason, default_dt, march
from .dg import cell_neighbours
from .harmonic import (
    MAX_DEGREE,
    expansion_degree,
    fixed_points_field,
    tables_preferred,
    transform_preferred,
)

__all__ = ["solve_fem", "choose_sphere_path", "check_level"]


def check_level(resolution) -> int:
    """The icosphere level: an integer in [0, 7] (else an error naming ``resolution``)."""
    return check_integer(resolution, "resolution (icosphere level)", low=0, high=7)


def initial_state(rho0, resolution, degree=1, comm=None, quadrature_degree=1):
    """(dg, state, total): the DG space on the level-``resolution`` icosphere and rho0
    interpolated into it and rescaled to unit discrete mass (total: the mass before), with
    the checks every solver applies to an initial density (finite, non-negative, integral 1
    within MASS_ERROR, judged against the polyhedron's own area)."""
    from .dg import SphereDG

    dg = SphereDG(resolution, degree=degree, comm=comm, quadrature_degree=quadrature_degree)
    state = dg.interpolate(lambda p: evaluate_density(rho0, p))
    total = dg.total_mass(state)
    # the flat polyhedron's area is 4 pi (1 - O(h^2)): judge the integral relative to it
    geometric = dg.comm.allreduce(dg.cell_area.sum()) / (4 * np.pi)
    check_total_mass(total / geometric, f" (corrected for the polyhedral area 4 pi x "
                                        f"{geometric:.6f})", rho0=rho0, d=3, method="fem",
                     resolution=resolution)
    return dg, state / total, total


def solve_fem(model, rho0, T, resolution=3, times=None, degree=1, cfl=0.3, limiter=True,
              quadrature_degree=1, max_dt=None, progress=None, output=None, comm=None,
              field="auto", max_steps=MAX_STEPS, cluster_fraction=0.9, on_unresolved="raise"):
    """DG solution of d/dt rho + div_S(rho X[rho]) = 0 on the level-``resolution`` icosphere.

    Parameters
    ----------
    model : Attention, MultiHead or Layers with d = 3 (``continuum.family``)
    rho0 : callable (M, 3) -> (M,)
        Initial density w.r.t. surface measure (integral 1 within 1e-2), interpolated into
        DG_p and rescaled to unit discrete mass (factor in ``info['initial_rescaling']``).
    T : float
    resolution : int
        Icosphere level (20 * 4^level triangles), 0..7.
    times : saved times in [0, T] (default 51 equispaced)
    degree : {1, 2}
        DG polynomial degree (the polyhedral geometry limits both to second order).
    cfl : float
        dt = min(cfl h_min / ((2p + 1) max|u|), max_dt), h_min the shortest edge.
    max_dt : float, optional
        Cap on the step (default ``continuum.timestep.default_dt(model)``, min(0.05, 0.1/L)
        with L = ||V||(1 + 2 beta ||Q^T K||)): SSP-RK3's time error stays O((L dt)^3) small
        even where the speed, and so the CFL step, is tiny.
    limiter : bool
        Zhang-Shu positivity limiter after every stage.
    quadrature_degree : int
        Triangle rule for the source measure of the nonlocal field (default 1: one point per
        cell, the centroid, O(h^2) like the rest of the scheme; growth-rate errors at level 3
        are the same with degree 2 or 4 to three digits, at a third of the cost).
    progress : bool or None
        tqdm bar on stderr, rank 0 only (None: only when stderr is a terminal).
    output : str or Path, optional
        Folder for a VTX file (``density.bp``, ParaView opens it) with rho at the saved times
        and a PNG (Mollweide map) of the final cell averages (``density_final.png``).
    comm : MPI communicator (default COMM_WORLD)
    field : {"auto", "kernel", "harmonic"}
        How the nonlocal field is evaluated (``attention_field``): "kernel" = the direct sum,
        O(cells x vertices) per stage; "harmonic" = the spherical-harmonic expansion of the
        kernel by nonuniform transforms (``continuum.sphere.harmonic``), O(cells + vertices +
        L^2 log L) (any Q, K; L from beta ||Q^T K||), or for small meshes and zonal kernels
        with beta c <= 2 the same expansion by transforms whose point angles are computed
        once, or on small meshes with tabulated harmonics (``harmonic.fixed_points_field``);
        "auto" = the tables where preferred, else harmonic from
        2^22 pairs on (level >= 4) while beta ||Q^T K|| <= 9, with the direct sum at vertices
        where the expansion's error bound exceeds 1e-10, else kernel.
    max_steps : int
        Step budget: a step at which the rest of the run needs more raises
        ``continuum.timestep.StepCollapseError`` saying why (``collapse_reason``).
    cluster_fraction : float in (0, 1]
        Threshold of the under-resolution indicator (module docstring).
    on_unresolved : {"raise", "warn"}
        A cluster narrower than a cell stops the run at that saved time with
        ``continuum.UnderResolved`` ("raise"), or the run goes on to T flagged in
        ``info["under_resolved_from"]`` with one warning ("warn").
    """
    if model.d != 3:
        raise ValueError(f"method='fem' solves on S^2 and needs a d=3 model, got d={model.d}")
    resolution = check_level(resolution)
    degree = check_integer(degree, "degree", low=1, high=2)
    quadrature_degree = check_integer(quadrature_degree, "quadrature_degree", low=1, high=30)
    cfl = check_real(cfl, "cfl", low=0, low_open=True, high=1)
    if max_dt is not None:
        max_dt = check_real(max_dt, "max_dt", low=0, low_open=True)
    check_flag(limiter, "limiter")
    check_flag(progress, "progress", allow_none=True)
    max_steps = check_integer(max_steps, "max_steps", low=1)
    cluster_fraction = check_real(cluster_fraction, "cluster_fraction", low=0, low_open=True,
                                  high=1)
    on_unresolved = check_on_unresolved(on_unresolved)
    if output is not None:
        check_output_path(output, "output", folder=True)
    if not callable(rho0):
        raise TypeError(f"rho0 must be a callable mapping points (M, 3) to densities (M,), "
                        f"got {type(rho0).__name__}")
    T, times = check_times(T, times)
    choose_sphere_path(model, field)  # checks ``field`` before any work
    wall = _time.perf_counter()
    dg, state, total = initial_state(rho0, resolution, degree=degree, comm=comm,
                                     quadrature_degree=quadrature_degree)
    speed = {"max": 0.0}
    # the CFL step follows |u|, which is tiny near a stationary state although the dynamics
    # there evolve on the time scale 1/L: cap the step as the particle integrator does
    max_dt = default_dt(model) if max_dt is None else max_dt
    method = {"auto": "auto", "kernel": "direct", "harmonic": "harmonic"}[field]
    tables = {}  # per head: the evaluator for the fixed points (None: attention_field)
    schedule = Schedule(model)  # the model in force (a Layers switches it, continuum.family)

    def head_velocity(head, pts, w, mass):
        if id(head) not in tables:  # the points are fixed: tabulate what depends on them once
            if len(tables) >= 16:
                tables.clear()
            tables[id(head)] = fixed_points_field(head, dg.velocity_targets, pts, field)
        if tables[id(head)] is not None:
            values = tables[id(head)](w / mass)
        else:
            values = attention_field(dg.velocity_targets, pts, w / mass, head, method=method,
                                     check=False)
        return values if head.normalized else values * mass

    def update_velocity(array):  # the heads' fields summed (one head for an Attention)
        pts, w = dg.quadrature_measure(array)
        mass = w.sum()
        values = sum_heads(schedule.current, lambda head: head_velocity(head, pts, w, mass))
        dg.set_velocity(values)
        speed["max"] = dg.global_max(np.linalg.norm(values, axis=1))
        speed["model"] = schedule.current

    cells_out = np.empty((times.size, dg.comm.allreduce(dg.n_owned_cells)))
    update_velocity(state)

    def propose(array):  # CFL step from the speed of the last stage, capped by max_dt
        if speed["model"] is not schedule.current:  # a switch: the new model's speed
            update_velocity(array)
        return min(cfl * dg.h_min / ((2 * degree + 1) * max(speed["max"], 1e-300)),
                   max_dt), None

    def step(array, dt, _):  # SSP-RK3 + limiter; redone with dt/2 if an average went negative
        new, min_avg = dg.ssp_rk3_step(array, dt, update_velocity, limiter=limiter)
        return new, min_avg >= 0 or not limiter

    areas = dg.gather_cells(dg.cell_area)
    neighbours = cell_neighbours(resolution)
    flagged = {}
    with _writer(dg, output) as writer:
        def save(k, array):  # True (stop) at the first unresolved saved time when raising
            cells_out[k] = dg.gather_cells(dg.cell_averages(array))
            if writer is not None:
                dg.set_state(array)
                writer.write(float(times[k]))
            if not flagged:  # every rank holds the gathered cells: all decide alike
                why = cluster_unresolved(cells_out[k] * areas, neighbours, cluster_fraction)
                if why:
                    flagged.update(under_resolved_from=float(times[k]), under_resolved=why,
                                   under_resolved_remedy=GRID_REMEDY.format(
                                       resolution=resolution))
                    return on_unresolved == "raise"
            return False

        _, counts = march(state, times, T, propose, step, save,
                          progress=progress if dg.comm.rank == 0 else False,
                          label=f"fem level {resolution}", max_steps=max_steps,
                          reason=collapse_reason(model, "S2 fem"), switch=schedule.switch)
    points = dg.gather_cells(dg.cell_centroid)
    cells_out = cells_out[: counts["saved"]]
    info = {"method": "fem", "resolution": int(resolution), "degree": degree, "cfl": cfl,
            "limiter": limiter, **counts,
            "field": choose_sphere_path(model, field, len(dg.velocity_targets), len(areas)),
            "field_evaluator": ",".join(dict.fromkeys(
                "attention_field" if f is None else type(f).__name__ for f in tables.values())),
            "h_min": dg.h_min,
            "cells": int(len(areas)), "discrete_area": float(areas.sum()),
            "initial_rescaling": 1.0 / total, "mpi_size": dg.comm.size,
            "cluster_fraction": cluster_fraction, "wall_time_s": _time.perf_counter() - wall,
            **flagged}
    if output is not None:
        info["vtx"] = str(_vtx_path(output))
        if dg.comm.rank == 0:
            from .plot import save_sphere_density

            info["png"] = save_sphere_density(
                Path(output) / "density_final.png", points, cells_out[-1],
                title=f"density at t = {times[-1]:g} (DG{degree}, level {resolution})")
    solution = finish_solution(model, times, points, areas, cells_out, info, positive=limiter)
    return settle_resolution(solution, on_unresolved)


def choose_sphere_path(model, field: str = "auto", n_targets: int = 0,
                       n_sources: int = 0) -> str:
    """The nonlocal-field path ("kernel" or "harmonic") ``solve_fem`` takes for ``field`` with
    this many velocity targets (vertices) and sources (quadrature points): "auto" is the choice
    of ``attention_field(method="auto")`` (``harmonic.transform_preferred``; targets whose
    error bound exceeds ``harmonic.TRUSTED_BOUND`` still get the direct sum). A MultiHead or
    Layers: the distinct paths of its heads, comma-joined."""
    if not isinstance(model, Attention):  # each head (of each layer) its own path
        return ",".join(dict.fromkeys(choose_sphere_path(head, field, n_targets, n_sources)
                                      for m in layers_of(model) for _, head in heads_of(m)))
    if field not in ("auto", "kernel", "harmonic"):
        raise ValueError(f"field must be 'auto', 'kernel' or 'harmonic', got {field!r}")
    if field == "harmonic" and expansion_degree(model) > MAX_DEGREE:
        raise ValueError(f"field='harmonic' needs degree {expansion_degree(model)} > "
                         f"{MAX_DEGREE} for beta ||Q^T K|| = "
                         f"{model.beta * np.linalg.norm(model.A, 2):.3g}; use 'kernel'")
    if field != "auto":
        return field
    if tables_preferred(model, n_targets, n_sources):
        return "harmonic"
    return "harmonic" if transform_preferred(model, n_targets, n_sources) else "kernel"


def _vtx_path(output):
    return Path(output) / "density.bp"


def _writer(dg, output):
    """The VTX writer of ``output`` as a context manager (closed on exit, also on errors), or a
    null context yielding None."""
    if output is None:
        return contextlib.nullcontext(None)
    import dolfinx.io

    Path(output).mkdir(parents=True, exist_ok=True)
    return dolfinx.io.VTXWriter(dg.comm, _vtx_path(output), [dg.rho], engine="BP4")
