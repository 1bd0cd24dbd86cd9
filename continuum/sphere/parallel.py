"""The MPI world of a process started by ``mpirun``, for the layers above the DG solver.

Only ``continuum/sphere/`` imports mpi4py; a study that runs the DG solver on several ranks
(``mpirun -n 2 meanfield run STUDY.toml``) needs the communicator too, to let rank 0 decide and
tell the others. ``mpi_world()`` returns ``MPI.COMM_WORLD`` when the launcher started more than
one rank and None otherwise, so a plain run never loads MPI. The launcher is recognised by the
variables it sets: ``PMI_SIZE`` (MPICH's hydra, the ``mpirun`` of the ``mpich`` wheel; also
Intel MPI and Slurm's PMI) and ``OMPI_COMM_WORLD_SIZE`` (Open MPI).
"""

from __future__ import annotations

import os
import time

__all__ = ["launched_ranks", "mpi_world", "bcast_from_root"]

#: environment variables in which MPI launchers give the number of ranks
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def launched_ranks() -> int:
    """Number of ranks the MPI launcher started (1 without a launcher)."""
    for name in SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def mpi_world():
    """``mpi4py.MPI.COMM_WORLD`` under a launcher with more than one rank, else None."""
    if launched_ranks() <= 1:
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD if MPI.COMM_WORLD.size > 1 else None


def bcast_from_root(comm, obj, poll: float = 0.01):
    """``obj`` of rank 0 on every rank. The ranks first meet at a non-blocking barrier polled
    every ``poll`` seconds: MPICH waits in a blocking call by spinning, so ranks waiting for
    rank 0 to finish a serial task (a particle run) would otherwise burn a core each."""
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(poll)
    return comm.bcast(obj, root=0)
