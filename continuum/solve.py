"""Entry point of the continuum solvers: ``solve(model, rho0, T, method, resolution, times)``.

One of the two dispatchers of the ground floor (with :mod:`continuum.kernels`): it imports the
solver of the requested method from ``continuum.circle`` or ``continuum.sphere`` when called,
so that importing :mod:`continuum` does not load DOLFINx.
"""

from __future__ import annotations

from .checks import check_choice
from .family import check_family, heads_of, layers_of
from .model import Attention
from .resolution import check_on_unresolved

__all__ = ["solve", "check_method", "check_initial", "METHODS"]

METHODS = ("spectral", "fv", "fem")
DEFAULT_RESOLUTION = {"spectral": 128, "fv": 256, "fem": 3}
#: the spectral method on S^2: band limit L
DEFAULT_BAND_LIMIT = 32


def solve(model, rho0, T, method="spectral", resolution=None, times=None,
          on_unresolved="raise", tol=None, max_resolution=None, **options):
    """Solve d/dt mu + div(mu X[mu]) = 0 from the density ``rho0`` up to time ``T``.

    Parameters
    ----------
    model : Attention, MultiHead or Layers (``continuum.family``)
        d = 2 (circle) for "spectral" and "fv"; d = 3 (2-sphere) for "spectral" and "fem".
        Several heads: their fields summed, each by its own fast path; Layers: the steps land
        on every layer switch (DOP853 restarts there).
    rho0 : callable
        Maps points (M, d) to densities (M,) w.r.t. the surface measure (arc length on S^1).
        Its integral must be 1 within 1e-2; the discrete initial measure is rescaled to unit
        mass and the factor recorded in ``info['initial_rescaling']``.
    T : float
        Final time.
    method : {"spectral", "fv", "fem"}
        "spectral": on S^1 Fourier pseudo-spectral + DOP853 (continuum.circle.spectral); on
        S^2 spherical harmonics up to degree L + DOP853 (continuum.sphere.spectral);
        "fv": positivity-preserving finite volumes + SSP-RK3 (continuum.circle.fv);
        "fem": DOLFINx upwind DG + SSP-RK3 + Zhang-Shu limiter on S^2 (continuum.sphere.solver).
    resolution : int or "auto"
        Nodes (spectral) or cells (fv) on S^1; on S^2 the band limit L (spectral, default
        32) or the icosphere level (fem). "auto": refined until converged to ``tol``, with an
        error estimate (:func:`continuum.refine.solve_auto`).
    times : array_like
        Saved times in [0, T] (default 51 equispaced).
    on_unresolved : {"raise", "warn"}
        What to do with a run the solver knows to be under-resolved
        (``info["under_resolved_from"]``): "raise" (default) an ``UnderResolved`` error naming
        the resolution, the time and the remedy, the solver stopping at that time (the
        partial Solution is the error's ``solution``), or "warn" and return the flagged
        Solution (:mod:`continuum.resolution`).
    tol, max_resolution
        Only with ``resolution="auto"``: the tolerance on the distance between consecutive
        resolutions (default 1e-3) and the finest resolution tried (``continuum.refine``;
        ``start=`` in the options sets the first).
    **options
        Passed to the solver (e.g. rtol, atol, field, cfl, limiter, progress).

    A causal model (``Attention(causal=True)``, d = 2 or 3, "spectral") gives the causal
    continuum: ``rho0`` is a callable of (points, s), ``slices=M`` position slices (default
    17), and the result a :class:`continuum.circle.causal.CausalSolution` with densities of
    shape (nt, M, n).

    Returns
    -------
    Solution
    """
    check_family(model)
    if not isinstance(model, Attention) and any(  # issue 24: the family and the mask
            head.causal for m in layers_of(model) for _, head in heads_of(m)):
        raise ValueError("model: a causal head inside a MultiHead or Layers has no continuum "
                         "solver (the causal continuum takes one causal Attention); "
                         "particles.simulate runs it")
    on_unresolved = check_on_unresolved(on_unresolved)
    # --- issue 24: a causal model's continuum is the family of position slices mu_s -------
    if getattr(model, "causal", False):
        if method != "spectral" or model.d not in (2, 3):
            raise ValueError(f"a causal model's continuum (position slices mu_s) is built for "
                             f"method='spectral' on S^1 and S^2 (d = 2, 3), got "
                             f"method={method!r}, d={model.d}")
        if isinstance(resolution, str) or tol is not None or max_resolution is not None:
            raise ValueError("resolution='auto' is not available for a causal model: give "
                             "the resolution (and slices=M)")
        if model.d == 2:
            from .circle.causal import solve_causal_spectral as causal_solver
        else:
            from .sphere.causal import solve_causal_sphere_spectral as causal_solver
        return causal_solver(model, rho0, T, resolution=check_method(method, model.d,
                                                                     resolution),
                             times=times, on_unresolved=on_unresolved, **options)
    # ----------------------------------------------------------------------------------------
    if isinstance(resolution, str) and resolution == "auto":
        from .refine import check_auto, solve_auto
        tol, start, top = check_auto(method, model.d, tol, max_resolution,
                                     options.pop("start", None), check_method)
        return solve_auto(lambda r: solve(model, rho0, T, method, r, times, "warn", **options),
                          method, model.d, tol, start, top, on_unresolved,
                          _carry(method, model.d))
    if tol is not None or max_resolution is not None:
        raise ValueError("tol and max_resolution go with resolution='auto', got resolution="
                         f"{resolution!r}")
    resolution = check_method(method, model.d, resolution)
    if method == "spectral" and model.d == 3:
        from .sphere.spectral import solve_sphere_spectral as solver
    elif method == "spectral":
        from .circle.spectral import solve_spectral as solver
    elif method == "fv":
        from .circle.fv import solve_fv as solver
    else:
        from .sphere.solver import solve_fem as solver
    return solver(model, rho0, T, resolution=resolution, times=times,
                  on_unresolved=on_unresolved, **options)


def _carry(method, d):
    """How ``resolution="auto"`` carries a coarse density to the finer grid
    (``continuum.refine.level_distance``): None for fem (cell measures compared as they are)."""
    if method == "fem":
        return None
    if method == "fv":
        from .refine import split_cells
        return split_cells
    if d == 2:
        from .circle.grid import fourier_interpolate
        return lambda coarse, fine, i: fourier_interpolate(coarse.density(i),
                                                           fine.densities.shape[1])
    from .sphere.spectral import synthesise

    def carry(coarse, fine, i):
        L = fine.info["resolution"]
        return synthesise(coarse.info["coefficients"][i], coarse.info["resolution"], L + 1,
                          2 * L + 2)
    return carry


def check_method(method, d, resolution=None):
    """The resolution ``solve`` would use for ``method`` in dimension ``d`` (the default when
    None), checked without solving, by the solvers' own checks: "fv" needs d = 2, "spectral"
    d = 2 or 3, "fem" d = 3; on S^1 an even number of nodes or cells >= 8, on S^2 a band limit
    in [2, 512] (spectral) or an icosphere level in [0, 7] (fem). ValueError or TypeError
    naming ``method``, ``d`` or ``resolution``. The studies call it for every point before any
    point runs."""
    check_choice(method, "method", METHODS)
    allowed = {"fv": (2,), "spectral": (2, 3), "fem": (3,)}[method]
    if d not in allowed:
        where = " or ".join(f"d = {k} ({'circle' if k == 2 else '2-sphere'})" for k in allowed)
        raise ValueError(f"method '{method}' needs {where}, got d={d}")
    if method == "spectral" and d == 3:
        from .sphere.spectral import check_band_limit
        return check_band_limit(DEFAULT_BAND_LIMIT if resolution is None else resolution)
    resolution = DEFAULT_RESOLUTION[method] if resolution is None else resolution
    if method == "fem":
        from .sphere.solver import check_level
        return check_level(resolution)
    from .circle.grid import check_resolution
    return check_resolution(resolution, minimum=8)


def check_initial(method, d, resolution, rho0, tail_tol=1e-6, cluster_fraction=0.9):
    """Discretise ``rho0`` on the grid ``solve(method=method, resolution=resolution)`` would
    use in dimension ``d``, with that solver's own checks of an initial density and its
    under-resolution indicator at t = 0 (spectral: the tail of the initial projection above
    ``tail_tol`` or a negative nodal density; fv, fem: a cluster narrower than a cell,
    ``cluster_fraction``), without solving: the studies call it in the main process for every
    backend before any run, so a density the grid cannot hold is refused up front. Returns
    the resolution; raises what the solver would raise on the same rho0 (TypeError or
    ValueError naming rho0 or resolution; ``UnderResolved`` at time 0 naming the resolution
    for a density too concentrated for the grid)."""
    from .resolution import (
        GRID_REMEDY,
        cluster_unresolved,
        initial_unresolved,
        spectral_indicator,
    )

    resolution = check_method(method, d, resolution)
    if method == "spectral" and d == 3:
        from .sphere.spectral import REMEDY, initial_coefficients, initial_indicator
        why = initial_indicator(initial_coefficients(rho0, resolution)[0], resolution,
                                tail_tol)
        remedy = REMEDY.format(L=resolution)
    elif method == "fem":
        from .sphere.dg import cell_neighbours
        from .sphere.solver import initial_state
        dg, state, _ = initial_state(rho0, resolution)
        masses = dg.gather_cells(dg.cell_averages(state)) * dg.gather_cells(dg.cell_area)
        why = cluster_unresolved(masses, cell_neighbours(resolution), cluster_fraction)
        remedy = GRID_REMEDY.format(resolution=resolution)
    else:
        from .initial import circle_nodes, nodal_density
        n = resolution
        points, weights = circle_nodes(n, 0.5 if method == "fv" else 0.0)  # cells / nodes
        rho = nodal_density(rho0, points, weights, method, n)[0]
        if method == "fv":
            from .circle.fv import circle_neighbours
            why = cluster_unresolved(rho * weights, circle_neighbours(n), cluster_fraction)
            remedy = GRID_REMEDY.format(resolution=n)
        else:
            from .circle.spectral import REMEDY, spectral_tail
            why = spectral_indicator(rho, spectral_tail(rho), tail_tol)
            remedy = REMEDY.format(n=n)
    if why:
        raise initial_unresolved(method, resolution, why, remedy)
    return resolution
