"""Tests for the icosphere triangulation and its DOLFINx mesh of S^2."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from continuum.sphere.icosphere import icosphere, mesh_size, polyhedron_area

ROOT = Path(__file__).resolve().parents[1]
FEM_LEVEL = 3


def _edges(triangles):
    """All 3 * nt half-edges as sorted pairs."""
    t = triangles
    e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    return np.sort(e, axis=1)


def _edge_length_sum(vertices, triangles):
    e = np.unique(_edges(triangles), axis=0)
    return np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1).sum()


def _x0_squared_integral(vertices, triangles):
    """Integral of x0**2 over the flat triangles, edge-midpoint rule.

    The midpoint rule (weights A/3) is exact for quadratics on a triangle and
    x0 is affine on each flat triangle, so this is exact up to rounding.
    """
    x = vertices[triangles]
    area = 0.5 * np.linalg.norm(np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]), axis=1)
    mids = 0.5 * (x + np.roll(x, -1, axis=1))  # (nt, 3 midpoints, 3 coords)
    return float(np.sum(area / 3.0 * np.sum(mids[:, :, 0] ** 2, axis=1)))


# --------------------------------------------------------------------------
# icosphere (pure numpy)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("level", range(5))
def test_counts_and_topology(level):
    v, t = icosphere(level)
    assert v.shape == (10 * 4**level + 2, 3) and v.dtype == np.float64
    assert t.shape == (20 * 4**level, 3) and t.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=0, atol=1e-14)
    # Every vertex is used, no degenerate triangle.
    assert np.array_equal(np.unique(t), np.arange(len(v)))
    assert np.all((t[:, 0] != t[:, 1]) & (t[:, 1] != t[:, 2]) & (t[:, 2] != t[:, 0]))
    # Closed conforming surface: every edge belongs to exactly two triangles.
    edges, count = np.unique(_edges(t), axis=0, return_counts=True)
    assert np.all(count == 2)
    # Each directed edge appears once: neighbours are consistently oriented.
    directed = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)
    # Outward orientation.
    x = v[t]
    normal = np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0])
    assert np.all(np.einsum("ij,ij->i", normal, x.mean(axis=1)) > 0)
    # Euler characteristic of S^2.
    assert len(v) - len(edges) + len(t) == 2


@pytest.mark.parametrize("bad", [-1, 10, 1.5, "2", None, True])
def test_invalid_level(bad):
    with pytest.raises(ValueError, match="level"):
        icosphere(bad)


def test_area_converges_like_h_squared():
    levels = range(1, 7)
    h, err = [], []
    for level in levels:
        v, t = icosphere(level)
        area = polyhedron_area(v, t)
        assert area < 4 * np.pi  # inscribed polyhedron
        h.append(mesh_size(v, t))
        err.append(4 * np.pi - area)
    slope = np.polyfit(np.log(h), np.log(err), 1)[0]
    assert abs(slope - 2.0) < 0.1
    # Mesh size halves (asymptotically) at each level.
    assert np.all(np.diff(np.log2(h)) < -0.9)


# --------------------------------------------------------------------------
# DOLFINx
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mesh():
    from continuum.sphere.mesh import sphere_mesh

    return sphere_mesh(level=FEM_LEVEL)


def _assemble(form_expr):
    from mpi4py import MPI  # before dolfinx (loads libmpi)

    from dolfinx import fem

    local = fem.assemble_scalar(fem.form(form_expr))
    return MPI.COMM_WORLD.allreduce(local, op=MPI.SUM)


def test_sphere_mesh_structure(mesh):
    from mpi4py import MPI

    assert mesh.topology.dim == 2
    assert mesh.geometry.dim == 3
    imap = mesh.topology.index_map(2)
    assert MPI.COMM_WORLD.allreduce(imap.size_local) == 20 * 4**FEM_LEVEL
    np.testing.assert_allclose(
        np.linalg.norm(mesh.geometry.x, axis=1), 1.0, rtol=0, atol=1e-14
    )


def test_area_is_polyhedron_area(mesh):
    import ufl

    area = _assemble(1 * ufl.dx(domain=mesh))
    # P1 geometry is exactly the flat polyhedron: identity up to rounding.
    expected = polyhedron_area(*icosphere(FEM_LEVEL))
    assert area == pytest.approx(expected, rel=1e-12)


def test_x0_squared_integral(mesh):
    import ufl

    x = ufl.SpatialCoordinate(mesh)
    value = _assemble(x[0] ** 2 * ufl.dx)
    v, t = icosphere(FEM_LEVEL)
    # Exact on the flat polyhedron (quadratic integrand, exact quadrature).
    assert value == pytest.approx(_x0_squared_integral(v, t), rel=1e-12)
    # Against the sphere: by icosahedral symmetry int x0^2 = int |x|^2 / 3, and
    # on a triangle with circumradius r <= h / sqrt(3) (acute triangles) the
    # plane lies at distance sqrt(1 - r^2), so 1 - h^2/3 <= |x|^2 <= 1 there.
    # Hence 0 < 4pi/3 - value <= (4pi - A + A h^2 / 3) / 3, both O(h^2).
    area, h = polyhedron_area(v, t), mesh_size(v, t)
    gap = 4 * np.pi / 3 - value
    assert 0 < gap <= (4 * np.pi - area + area * h**2 / 3) / 3


def test_interior_facet_integral_is_total_edge_length(mesh):
    import ufl
    from dolfinx import fem

    V = fem.functionspace(mesh, ("DG", 0))
    u = fem.Function(V)
    u.x.array[:] = 1.0
    length = _assemble(ufl.avg(u) * ufl.dS)
    # Closed surface: every edge is an interior facet.
    expected = _edge_length_sum(*icosphere(FEM_LEVEL))
    assert length == pytest.approx(expected, rel=1e-12)


_MPI_SCRIPT = """
from mpi4py import MPI
import ufl
from dolfinx import fem
from continuum.sphere.mesh import sphere_mesh

mesh = sphere_mesh({level})
comm = mesh.comm
u = fem.Function(fem.functionspace(mesh, ("DG", 0)))
u.x.array[:] = 1.0
area = comm.allreduce(fem.assemble_scalar(fem.form(1 * ufl.dx(domain=mesh))))
length = comm.allreduce(fem.assemble_scalar(fem.form(ufl.avg(u) * ufl.dS)))
ncells = comm.allreduce(mesh.topology.index_map(2).size_local)
if comm.rank == 0:
    print(comm.size, ncells, repr(area), repr(length))
"""


def test_mpi_two_ranks_match_serial(tmp_path, mesh):
    mpirun = Path(sys.executable).parent / "mpirun"
    if not mpirun.exists():
        found = shutil.which("mpirun")
        if found is None:
            if not os.environ.get("CI"):
                pytest.skip("mpirun not found (this test never skips when CI is set)")
            pytest.fail("mpirun not found next to sys.executable nor on PATH")
        mpirun = Path(found)
    script = tmp_path / "sphere_mpi.py"
    script.write_text(_MPI_SCRIPT.format(level=FEM_LEVEL))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [str(mpirun), "-n", "2", sys.executable, str(script)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    size, ncells, area, length = proc.stdout.split()
    assert int(size) == 2
    assert int(ncells) == 20 * 4**FEM_LEVEL
    import ufl

    serial_area = _assemble(1 * ufl.dx(domain=mesh))
    assert float(area) == pytest.approx(serial_area, rel=1e-12)
    v, t = icosphere(FEM_LEVEL)
    # Interior facets across the partition boundary are counted once.
    assert float(length) == pytest.approx(_edge_length_sum(v, t), rel=1e-12)
