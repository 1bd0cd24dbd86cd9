"""Upwind discontinuous Galerkin for the continuity equation on S^2 (DOLFINx).

.. math::

    \\partial_t \\rho + \\mathrm{div}_S(\\rho u) = 0 \\quad\\text{on the polyhedral sphere } S_h,

with rho in DG_p (Lagrange, discontinuous, p = 1 or 2) on the flat triangles of an icosphere
and u a tangent field (vector P1 Lagrange, values at the vertices, which lie on S^2). Weak form,
for every test function phi (Di Pietro & Ern, ch. 2):

.. math::

    \\int_K \\partial_t\\rho\\,\\phi = \\int_K \\rho\\, u\\cdot\\nabla\\phi
      - \\sum_{F} \\int_F \\hat F\\, [\\![\\phi]\\!],\\qquad
    \\hat F = (u_n)^+ \\rho^+ + (u_n)^- \\rho^-,\\quad
    u_n = \\tfrac12 (u^+\\cdot n^+ - u^-\\cdot n^-),

where [[phi]] = phi^+ - phi^-. On a polyhedral surface each cell's in-plane co-normal differs
(n^+ != -n^-), so the facet speed is averaged into one single-valued u_n: the flux leaving one
cell is the flux entering its neighbour and mass is conserved to round-off (test phi = 1).

Time stepping: SSP-RK3 (Shu-Osher). The DG mass matrix is block diagonal (one block per cell);
its inverse is precomputed block by block. After each stage the Zhang-Shu scaling limiter
replaces rho by rhobar + theta (rho - rhobar) in every cell where rho is negative at a node,
theta = rhobar / (rhobar - min rho), which keeps cell averages and makes the nodal values
non-negative (for p = 1 the minimum of a linear function on a triangle is at a vertex, so this
is positivity everywhere). Cell averages stay non-negative if each forward-Euler stage obeys a
CFL bound; the step is dt = cfl h_min / ((2p + 1) max |u|) and a step whose stages produce a
negative cell average is redone with half the step.

Parallel: cells are distributed by DOLFINx (shared-facet ghosting); the nonlocal velocity
needs the whole measure, so quadrature points and weights of the owned cells are all-gathered
(see ``quadrature_measure``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SphereDG"]


class SphereDG:
    """DG_p discretisation of the continuity equation on the icosphere of a given level.

    Parameters
    ----------
    level : int
        Icosphere refinement level (20 * 4^level triangles).
    degree : int
        Polynomial degree p of the density (1 or 2).
    comm : mpi4py communicator (default COMM_WORLD)
    quadrature_degree : int
        Degree of the triangle rule for the source measure of the nonlocal field (1: the
        centroid rule, one source per cell).
    """

    def __init__(self, level: int, degree: int = 1, comm=None, quadrature_degree: int = 1):
        from mpi4py import MPI  # before dolfinx

        import basix
        import basix.ufl
        import dolfinx.fem as fem
        import ufl

        from .mesh import sphere_mesh

        if degree not in (1, 2):
            raise ValueError(f"degree must be 1 or 2, got {degree}")
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.level, self.degree = int(level), int(degree)
        self.mesh = mesh = sphere_mesh(level, self.comm)
        tdim = mesh.topology.dim
        mesh.topology.create_connectivity(tdim - 1, tdim)
        self.n_owned_cells = mesh.topology.index_map(tdim).size_local
        self.V = fem.functionspace(mesh, ("Discontinuous Lagrange", degree))
        self.W = fem.functionspace(mesh, ("Lagrange", 1, (3,)))
        self.rho = fem.Function(self.V, name="density")
        self.u = fem.Function(self.W, name="velocity")
        phi = ufl.TestFunction(self.V)
        trial = ufl.TrialFunction(self.V)
        n = ufl.FacetNormal(mesh)
        rho, u = self.rho, self.u
        un = 0.5 * (ufl.dot(u("+"), n("+")) - ufl.dot(u("-"), n("-")))
        flux = ufl.max_value(un, 0) * rho("+") + ufl.min_value(un, 0) * rho("-")
        self.rhs_form = fem.form(rho * ufl.dot(u, ufl.grad(phi)) * ufl.dx
                                 - flux * (phi("+") - phi("-")) * ufl.dS)
        self._rhs_vec = fem.Function(self.V)

        # cell dofs and block-diagonal inverse mass matrix
        self.cell_dofs = self.V.dofmap.list[: self.n_owned_cells]
        mass = fem.assemble_matrix(fem.form(trial * phi * ufl.dx)).to_scipy()
        d = self.cell_dofs
        blocks = np.asarray(mass[d[:, :, None].repeat(d.shape[1], 2).reshape(-1),
                                 d[:, None, :].repeat(d.shape[1], 1).reshape(-1)])
        blocks = blocks.reshape(d.shape[0], d.shape[1], d.shape[1])
        self.inverse_mass = np.linalg.inv(blocks)

        # cell geometry (owned cells): areas, centroids projected to the sphere
        cells = np.arange(self.n_owned_cells, dtype=np.int32)
        self._cells = cells
        dg0 = fem.functionspace(mesh, ("Discontinuous Lagrange", 0))
        area = fem.assemble_vector(fem.form(ufl.TestFunction(dg0) * ufl.dx)).array
        self.cell_area = np.asarray(area[: self.n_owned_cells]).copy()
        x = ufl.SpatialCoordinate(mesh)
        centroid = fem.Expression(x, np.array([[1 / 3, 1 / 3]]))
        c = centroid.eval(mesh, cells).reshape(-1, 3)
        self.cell_centroid = c / np.linalg.norm(c, axis=1, keepdims=True)
        self.original_cell_index = np.asarray(
            mesh.topology.original_cell_index[: self.n_owned_cells], dtype=np.int64)
        # nodes of the DG space inside each cell in reference coordinates (for the averages)
        qpts, qwts = basix.make_quadrature(basix.CellType.triangle, max(2 * degree, 2))
        self._avg_expr = fem.Expression(rho, qpts)
        self._avg_weights = qwts / qwts.sum()
        qx = fem.Expression(x, qpts).eval(mesh, cells).reshape(len(cells), -1, 3)
        self._avg_points = qx / np.linalg.norm(qx, axis=2, keepdims=True)
        # quadrature of the source measure for the nonlocal field
        spts, swts = basix.make_quadrature(basix.CellType.triangle, quadrature_degree)
        self._src_rho = fem.Expression(rho, spts)
        src_x = fem.Expression(x, spts).eval(mesh, cells).reshape(len(cells), -1, 3)
        self._src_points = (src_x / np.linalg.norm(src_x, axis=2, keepdims=True)).reshape(-1, 3)
        # weight of point q in cell K: |K| w_q / |reference triangle| (flat cells: affine map)
        self._src_area = (self.cell_area[:, None] * (swts / swts.sum())[None, :]).reshape(-1)
        self.h_min = self._min_edge_length()
        self.velocity_targets = self.W.tabulate_dof_coordinates()

    # ------------------------------------------------------------------ geometry
    def _min_edge_length(self) -> float:
        from mpi4py import MPI

        x = self.mesh.geometry.x
        dm = self.mesh.geometry.dofmaps[0][: self.n_owned_cells]
        p = x[dm]
        edges = np.concatenate([np.linalg.norm(p[:, i] - p[:, (i + 1) % 3], axis=1)
                                for i in range(3)])
        local = edges.min() if edges.size else np.inf
        return float(self.comm.allreduce(local, op=MPI.MIN))

    # ------------------------------------------------------------------ state helpers
    def interpolate(self, density):
        """Set rho to the DG interpolant of ``density`` (callable on points (M, 3) on S^2);
        returns a copy of the local dof array."""
        def values(x):
            p = x.T / np.linalg.norm(x.T, axis=1, keepdims=True)
            return np.asarray(density(p), dtype=np.float64)

        self.rho.interpolate(values)
        self.rho.x.scatter_forward()
        return self.rho.x.array.copy()

    def set_state(self, array):
        self.rho.x.array[:] = array
        self.rho.x.scatter_forward()

    def cell_averages(self, array) -> np.ndarray:
        """Cell averages of rho (owned cells): exact quadrature of the polynomial."""
        self.set_state(array)
        vals = self._avg_expr.eval(self.mesh, self._cells).reshape(len(self._cells), -1)
        return vals @ self._avg_weights

    def total_mass(self, array) -> float:
        from mpi4py import MPI

        return float(self.comm.allreduce(self.cell_averages(array) @ self.cell_area,
                                         op=MPI.SUM))

    def quadrature_measure(self, array):
        """(points, weights) of the source measure sum_q rho(x_q) |K| w_q delta_{x_q/|x_q|}
        over all cells of all ranks (all-gathered), with rho clipped at 0."""
        self.set_state(array)
        vals = self._src_rho.eval(self.mesh, self._cells).reshape(-1)
        weights = np.maximum(vals, 0.0) * self._src_area
        pts = self.comm.allgather(self._src_points)
        wts = self.comm.allgather(weights)
        return np.concatenate(pts), np.concatenate(wts)

    def set_velocity(self, values: np.ndarray):
        """Velocity at the vector-P1 dofs (the mesh vertices): array (n_targets, 3)."""
        self.u.x.array[:] = np.asarray(values, dtype=np.float64).reshape(-1)
        self.u.x.scatter_forward()

    def l2_error(self, array, exact) -> float:
        """(int_{S_h} (rho_h - exact(x/|x|))^2)^{1/2} by a degree-2p rule on each flat cell."""
        from mpi4py import MPI

        self.set_state(array)
        vals = self._avg_expr.eval(self.mesh, self._cells).reshape(len(self._cells), -1)
        ex = np.asarray(exact(self._avg_points.reshape(-1, 3))).reshape(vals.shape)
        local = float(((vals - ex) ** 2 @ self._avg_weights) @ self.cell_area)
        return float(np.sqrt(self.comm.allreduce(local, op=MPI.SUM)))

    def ssp_rk3_step(self, array, dt, update_velocity=None, limiter=True):
        """One SSP-RK3 (Shu-Osher) step; ``update_velocity(array)`` (if given) sets u from the
        stage state before each stage. Returns (new array, min cell average over the stages)."""
        def stage(a):
            if update_velocity is not None:
                update_velocity(a)
            return self.rhs(a)

        def finish(a):  # (limited state, min cell average); the limiter keeps the averages
            a, avg = self.limit(a) if limiter else (a, self.cell_averages(a))
            return a, self.global_min(avg)

        s1, m1 = finish(array + dt * stage(array))
        s2, m2 = finish(0.75 * array + 0.25 * (s1 + dt * stage(s1)))
        out, m3 = finish(array / 3.0 + (2.0 / 3.0) * (s2 + dt * stage(s2)))
        return out, min(m1, m2, m3)

    # ------------------------------------------------------------------ operators
    def rhs(self, array) -> np.ndarray:
        """d rho / dt = M^{-1} L(rho, u) for the current velocity; local dof array (ghosts
        updated)."""
        import dolfinx.fem as fem
        from dolfinx.la import InsertMode

        self.set_state(array)
        vec = self._rhs_vec.x
        vec.array[:] = 0.0
        fem.assemble_vector(vec.array, self.rhs_form)
        vec.scatter_reverse(InsertMode.add)
        out = np.zeros_like(array)
        d = self.cell_dofs
        out[d] = np.einsum("cij,cj->ci", self.inverse_mass, vec.array[d])
        self._rhs_vec.x.array[:] = out
        self._rhs_vec.x.scatter_forward()
        return self._rhs_vec.x.array.copy()

    def limit(self, array):
        """Zhang-Shu scaling towards the cell average where a nodal value is negative.

        Returns (limited local dof array, cell averages), the averages being unchanged."""
        out = array.copy()
        d = self.cell_dofs
        vals = out[d]
        avg = self.cell_averages(array)
        low = vals.min(axis=1)
        if self.degree == 2:  # also check the quadrature points of the averages
            low = np.minimum(low, self._avg_expr.eval(self.mesh, self._cells).reshape(
                len(self._cells), -1).min(axis=1))
        bad = low < 0
        if np.any(bad):
            theta = np.where(bad, np.maximum(avg, 0.0) / np.maximum(avg - low, 1e-300), 1.0)
            theta = np.minimum(theta, 1.0)
            out[d] = avg[:, None] + theta[:, None] * (vals - avg[:, None])
        self.set_state(out)
        return self.rho.x.array.copy(), avg

    def global_min(self, values) -> float:
        from mpi4py import MPI

        local = float(np.min(values)) if len(values) else np.inf
        return float(self.comm.allreduce(local, op=MPI.MIN))

    def global_max(self, values) -> float:
        from mpi4py import MPI

        local = float(np.max(values)) if len(values) else -np.inf
        return float(self.comm.allreduce(local, op=MPI.MAX))

    def gather_cells(self, values) -> np.ndarray:
        """Owned-cell values of every rank, in the original (serial icosphere) cell order."""
        idx = np.concatenate(self.comm.allgather(self.original_cell_index))
        vals = np.concatenate(self.comm.allgather(np.asarray(values)))
        out = np.empty((len(idx),) + vals.shape[1:], dtype=vals.dtype)
        out[idx] = vals
        return out
