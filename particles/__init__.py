"""The N-token system on S^{d-1} for any d: integrators and sampling.

Public API::

    from particles import simulate, sample
    x0 = sample(rho0, n=10_000, d=3, seed=0)
    traj = simulate(model, x0, T=10.0, times=[...])
    traj.measure(i)
"""

from .integrate import Trajectory, simulate
from .sampling import sample

__all__ = ["simulate", "sample", "Trajectory"]
