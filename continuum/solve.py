"""Entry point of the continuum solvers: ``solve(model, rho0, T, method, resolution, times)``."""

from __future__ import annotations

__all__ = ["solve"]

METHODS = ("spectral", "fv", "fem")


def solve(model, rho0, T, method="spectral", resolution=None, times=None, **options):
    """Solve d/dt mu + div(mu X[mu]) = 0 from the density ``rho0`` up to time ``T``.

    Not available yet: the circle solvers ("spectral", "fv") and the sphere solver ("fem")
    are the next issues of the project. Until then this raises NotImplementedError; use
    ``particles.simulate`` for the N-token system.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    raise NotImplementedError(
        f"continuum solver method={method!r} is not implemented yet; "
        "use particles.simulate for the N-token system")
