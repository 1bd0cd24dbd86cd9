"""Entry point of the continuum solvers: ``solve(model, rho0, T, method, resolution, times)``.

One of the two dispatchers of the ground floor (with :mod:`continuum.kernels`): it imports the
solver of the requested method from ``continuum.circle`` or ``continuum.sphere`` when called,
so that importing :mod:`continuum` does not load DOLFINx.
"""

from __future__ import annotations

__all__ = ["solve", "METHODS"]

METHODS = ("spectral", "fv", "fem")
DEFAULT_RESOLUTION = {"spectral": 128, "fv": 256, "fem": 3}
#: the spectral method on S^2: band limit L
DEFAULT_BAND_LIMIT = 32


def solve(model, rho0, T, method="spectral", resolution=None, times=None, **options):
    """Solve d/dt mu + div(mu X[mu]) = 0 from the density ``rho0`` up to time ``T``.

    Parameters
    ----------
    model : Attention
        d = 2 (circle) for "spectral" and "fv"; d = 3 (2-sphere) for "spectral" and "fem".
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
    resolution : int
        Nodes (spectral) or cells (fv) on S^1; on S^2 the band limit L (spectral, default
        32) or the icosphere level (fem).
    times : array_like
        Saved times in [0, T] (default 51 equispaced).
    **options
        Passed to the solver (e.g. rtol, atol, field, cfl, limiter, progress).

    Returns
    -------
    Solution
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "spectral" and getattr(model, "d", None) not in (2, 3):
        raise ValueError(f"method 'spectral' needs d = 2 (circle) or 3 (2-sphere), got "
                         f"d={getattr(model, 'd', None)}")
    if method == "spectral" and model.d == 3:
        from .sphere.spectral import solve_sphere_spectral
        resolution = DEFAULT_BAND_LIMIT if resolution is None else resolution
        return solve_sphere_spectral(model, rho0, T, resolution=resolution, times=times,
                                     **options)
    if resolution is None:
        resolution = DEFAULT_RESOLUTION[method]
    if method == "spectral":
        from .circle.spectral import solve_spectral
        return solve_spectral(model, rho0, T, resolution=resolution, times=times, **options)
    if method == "fv":
        from .circle.fv import solve_fv
        return solve_fv(model, rho0, T, resolution=resolution, times=times, **options)
    from .sphere.solver import solve_fem
    return solve_fem(model, rho0, T, resolution=resolution, times=times, **options)
