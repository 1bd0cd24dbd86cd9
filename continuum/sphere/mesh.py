"""DOLFINx mesh of the unit sphere S^2 built from :func:`icosphere`."""

from __future__ import annotations

import numpy as np

from .icosphere import check_level, icosphere


def sphere_mesh(level: int, comm=None):
    """Distributed P1 triangle mesh of the polyhedral unit sphere.

    The cells and vertices of ``icosphere(level)`` are given on rank 0 (the
    other ranks pass empty arrays) and partitioned over ``comm`` with
    ``GhostMode.shared_facet``, so interior-facet (``dS``) integrals also work
    in parallel.  The P1 geometry is the flat inscribed polyhedron: its area
    is ``polyhedron_area(*icosphere(level)) = 4 pi (1 - O(h**2))``.

    Parameters
    ----------
    level : int
        Icosphere refinement level, ``0 <= level <= 9``.
    comm : mpi4py.MPI.Comm, optional
        Communicator, default ``MPI.COMM_WORLD``.

    Returns
    -------
    dolfinx.mesh.Mesh
        Mesh with topological dimension 2 and geometric dimension 3.
    """
    from mpi4py import MPI  # before dolfinx (loads libmpi)

    import basix.ufl
    import dolfinx.mesh

    comm = MPI.COMM_WORLD if comm is None else comm
    level = check_level(level)  # raise on every rank, not only on rank 0
    if comm.rank == 0:
        x, cells = icosphere(level)
    else:
        x, cells = np.empty((0, 3), np.float64), np.empty((0, 3), np.int64)
    element = basix.ufl.element("Lagrange", "triangle", 1, shape=(3,))
    partitioner = dolfinx.mesh.create_cell_partitioner(
        dolfinx.mesh.GhostMode.shared_facet, 2
    )
    return dolfinx.mesh.create_mesh(comm, cells, element, x, partitioner=partitioner)
