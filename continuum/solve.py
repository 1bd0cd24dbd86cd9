"""Entry point of the continuum solvers: ``solve(model, rho0, T, method, resolution, times)``.

One of the two dispatchers of the ground floor (with :mod:`continuum.kernels`): it imports the
solver of the requested method from ``continuum.circle`` or ``continuum.sphere`` when called,
so that importing :mod:`continuum` does not load DOLFINx.
"""

from __future__ import annotations

from .checks import check_choice
from .model import Attention

__all__ = ["solve", "METHODS"]

METHODS = ("spectral", "fv", "fem")
DEFAULT_RESOLUTION = {"spectral": 128, "fv": 256, "fem": 3}


def solve(model, rho0, T, method="spectral", resolution=None, times=None, **options):
    """Solve d/dt mu + div(mu X[mu]) = 0 from the density ``rho0`` up to time ``T``.

    Parameters
    ----------
    model : Attention
        d = 2 (circle) for "spectral" and "fv"; d = 3 (2-sphere) for "fem".
    rho0 : callable
        Maps points (M, d) to densities (M,) w.r.t. the surface measure (arc length on S^1).
        Its integral must be 1 within 1e-2; the discrete initial measure is rescaled to unit
        mass and the factor recorded in ``info['initial_rescaling']``.
    T : float
        Final time.
    method : {"spectral", "fv", "fem"}
        "spectral": Fourier pseudo-spectral + DOP853 (continuum.circle.spectral);
        "fv": positivity-preserving finite volumes + SSP-RK3 (continuum.circle.fv);
        "fem": DOLFINx upwind DG + SSP-RK3 + Zhang-Shu limiter on S^2 (continuum.sphere.solver).
    resolution : int
        Nodes (spectral) or cells (fv) on S^1; icosphere level on S^2.
    times : array_like
        Saved times in [0, T] (default 51 equispaced).
    **options
        Passed to the solver (e.g. rtol, atol, field, cfl, limiter, progress).

    Returns
    -------
    Solution
    """
    if not isinstance(model, Attention):
        raise TypeError(f"model must be an Attention, got {type(model).__name__}")
    check_choice(method, "method", METHODS)
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
