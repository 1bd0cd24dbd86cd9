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

import numba
import numpy as np

__all__ = ["SphereDG", "cell_neighbours"]


def cell_neighbours(level: int) -> np.ndarray:
    """(cells, 3): the three edge neighbours of every triangle of ``icosphere(level)``, in its
    (serial) cell order, the order of ``SphereDG.gather_cells``."""
    from .icosphere import icosphere

    triangles = icosphere(level)[1]
    n = len(triangles)
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]],
                                    triangles[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(n), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))  # each edge of a closed surface: 2 cells
    first, second = owner[order[0::2]], owner[order[1::2]]
    cell = np.concatenate([first, second])
    other = np.concatenate([second, first])
    return other[np.argsort(cell, kind="stable")].reshape(n, 3)  # every cell: 3 edges


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
        # the degrees UFL estimates (2p and 2p + 1), stated because the compiled operator
        # (_DGTables) uses the same rules
        dx = ufl.dx(metadata={"quadrature_degree": 2 * degree})
        dS = ufl.dS(metadata={"quadrature_degree": 2 * degree + 1})
        self.rhs_form = fem.form(rho * ufl.dot(u, ufl.grad(phi)) * dx
                                 - flux * (phi("+") - phi("-")) * dS)
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
        dg0 = fem.functionspace(mesh, ("Discontinuous Lagrange", 0))
        area = fem.assemble_vector(fem.form(ufl.TestFunction(dg0) * ufl.dx)).array
        self.cell_area = np.asarray(area[: self.n_owned_cells]).copy()
        x = ufl.SpatialCoordinate(mesh)
        centroid = fem.Expression(x, np.array([[1 / 3, 1 / 3]]))
        c = centroid.eval(mesh, cells).reshape(-1, 3)
        self.cell_centroid = c / np.linalg.norm(c, axis=1, keepdims=True)
        self.original_cell_index = np.asarray(
            mesh.topology.original_cell_index[: self.n_owned_cells], dtype=np.int64)
        # a degree-2p rule on each cell (averages, L2 errors): rho at its points is
        # rho[cell_dofs] @ _avg_basis.T (basis values, reference coordinates)
        element = self.V.ufl_element()
        qpts, qwts = basix.make_quadrature(basix.CellType.triangle, max(2 * degree, 2))
        self._avg_basis = element.tabulate(0, qpts)[0]
        self._avg_weights = qwts / qwts.sum()
        self._dof_average = self._avg_basis.T @ self._avg_weights  # mean of phi_j over K
        # points where the limiter checks positivity besides the nodes: for p = 1 the nodes
        # (vertices) hold the minimum; for p = 2 also the averaging rule's points
        self._limiter_basis = self._avg_basis[: 0 if degree == 1 else None]
        qx = fem.Expression(x, qpts).eval(mesh, cells).reshape(len(cells), -1, 3)
        self._avg_points = qx / np.linalg.norm(qx, axis=2, keepdims=True)
        # quadrature of the source measure for the nonlocal field
        spts, swts = basix.make_quadrature(basix.CellType.triangle, quadrature_degree)
        self._src_basis = element.tabulate(0, spts)[0]
        src_x = fem.Expression(x, spts).eval(mesh, cells).reshape(len(cells), -1, 3)
        self._src_points = (src_x / np.linalg.norm(src_x, axis=2, keepdims=True)).reshape(-1, 3)
        # weight of point q in cell K: |K| w_q / |reference triangle| (flat cells: affine map)
        self._src_area = (self.cell_area[:, None] * (swts / swts.sum())[None, :]).reshape(-1)
        self.h_min = self._min_edge_length()
        self.velocity_targets = self.W.tabulate_dof_coordinates()
        self._tables = _DGTables(self)

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

    def _values(self, array, basis) -> np.ndarray:
        """rho at tabulated reference points of every owned cell, (cells, points)."""
        return array[self.cell_dofs] @ basis.T

    def cell_averages(self, array) -> np.ndarray:
        """Cell averages of rho (owned cells): exact quadrature of the polynomial,
        sum_j rho_j (mean of phi_j over the cell)."""
        return array[self.cell_dofs] @ self._dof_average

    def total_mass(self, array) -> float:
        from mpi4py import MPI

        return float(self.comm.allreduce(self.cell_averages(array) @ self.cell_area,
                                         op=MPI.SUM))

    def quadrature_measure(self, array):
        """(points, weights) of the source measure sum_q rho(x_q) |K| w_q delta_{x_q/|x_q|}
        over all cells of all ranks (all-gathered), with rho clipped at 0."""
        vals = self._values(array, self._src_basis).reshape(-1)
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

        vals = self._values(array, self._avg_basis)
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
        updated). L by the compiled kernels of ``_DGTables`` (the integrals of ``rhs_form``
        with its quadrature rules; ``assembled_rhs`` is the DOLFINx reference)."""
        self.set_state(array)
        self._rhs_vec.x.array[:] = self._tables.residual(self.rho.x.array, self.u.x.array)
        return self._solve_mass()

    def assembled_rhs(self, array) -> np.ndarray:
        """``rhs`` with L assembled by DOLFINx from ``rhs_form`` (the reference)."""
        import dolfinx.fem as fem

        self.set_state(array)
        self._rhs_vec.x.array[:] = 0.0
        fem.assemble_vector(self._rhs_vec.x.array, self.rhs_form)
        return self._solve_mass()

    def _solve_mass(self) -> np.ndarray:
        """M^{-1} of the local residual in ``_rhs_vec`` (after adding the ghosts' parts)."""
        from dolfinx.la import InsertMode

        vec = self._rhs_vec.x
        vec.scatter_reverse(InsertMode.add)
        out = np.zeros_like(vec.array)
        _apply_inverse_mass(vec.array, self.cell_dofs, self.inverse_mass, out)
        vec.array[:] = out
        vec.scatter_forward()
        return vec.array.copy()

    def limit(self, array):
        """Zhang-Shu scaling towards the cell average where a nodal value is negative.

        Returns (limited local dof array, cell averages), the averages being unchanged."""
        out = array.copy()
        avg = np.empty(len(self.cell_dofs))
        _scale_limiter(out, self.cell_dofs, self._dof_average, self._limiter_basis, avg)
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


# ---------------------------------------------------------------------------- compiled operator
class _DGTables:
    """Everything the compiled right-hand side needs, tabulated once from the DOLFINx mesh and
    spaces: the same integrals as ``SphereDG.rhs_form`` with the same quadrature rules
    (degree 2p on cells, 2p + 1 on facets), on the same cells and facets (the form's
    integration entities: owned cells, the facets this rank integrates).

    Cells K (affine, x = X_0 + J xi with J = [X_1 - X_0, X_2 - X_0] in R^{3x2}):
    grad phi_i = J (J^T J)^{-1} grad_xi phi_i and |K| = sqrt(det J^T J) / 2, so

        int_K rho u.grad phi_i = sum_q w_q sqrt(det J^T J) rho(x_q) u(x_q).grad phi_i(x_q).

    Facets F = K+ n K- (points x_q = a + s_q (b - a), weights w_q |F|, co-normals n+- in the
    plane of K+-, pointing out of it): the upwind flux of the weak form at x_q, with the basis
    of each side evaluated at the pull-back xi = (J^T J)^{-1} J^T (x_q - X_0) of x_q.
    """

    def __init__(self, dg):
        import basix
        from dolfinx.fem import IntegralType

        p = dg.degree
        form = dg.rhs_form._cpp_object
        x = dg.mesh.geometry.x
        self.dofs = np.ascontiguousarray(dg.V.dofmap.list, dtype=np.int64)
        self.udofs = np.ascontiguousarray(dg.W.dofmap.list, dtype=np.int64)
        vertices = x[dg.mesh.geometry.dofmaps[0]]  # (cells, 3, 3): X_0, X_1, X_2
        J = np.stack([vertices[:, 1] - vertices[:, 0], vertices[:, 2] - vertices[:, 0]], -1)
        JtJ = np.einsum("cki,ckj->cij", J, J)
        JtJ_inv = np.linalg.inv(JtJ)
        element = dg.V.ufl_element()
        p1 = basix.create_element(basix.ElementFamily.P, basix.CellType.triangle, 1)

        # cells: w_q sqrt(det J^T J), phi_j(xi_q), P1(xi_q), grad phi_i(x_q)
        self.cells = np.ascontiguousarray(form.domains(IntegralType.cell, 0), dtype=np.int64)
        pts, wts = basix.make_quadrature(basix.CellType.triangle, 2 * p)
        tab = element.tabulate(1, pts)  # (3, q, i)
        self.cell_weight = wts[None, :] * np.sqrt(np.linalg.det(JtJ[self.cells]))[:, None]
        self.cell_phi = np.ascontiguousarray(tab[0])
        self.cell_p1 = np.ascontiguousarray(p1.tabulate(0, pts)[0, :, :, 0])
        ref_grad = tab[1:]  # (2, q, i)
        self.cell_grad = np.ascontiguousarray(np.einsum(
            "cxa,cab,bqi->cqix", J[self.cells], JtJ_inv[self.cells], ref_grad))

        # facets: pairs (K+, K-), points on the edge, each side's basis there, co-normals
        pairs = form.domains(IntegralType.interior_facet, 0)  # (F, 2, 2): (cell, local facet)
        self.facet_cells = np.ascontiguousarray(pairs[:, :, 0], dtype=np.int64)
        cp, lf = pairs[:, 0, 0], pairs[:, 0, 1]
        ends = np.array([[1, 2], [0, 2], [0, 1]])[lf]  # reference facet k is opposite vertex k
        a = vertices[cp, ends[:, 0]]
        b = vertices[cp, ends[:, 1]]
        s, fw = basix.make_quadrature(basix.CellType.interval, 2 * p + 1)
        points = a[:, None, :] + s[None, :, 0, None] * (b - a)[:, None, :]  # (F, q, 3)
        self.facet_weight = fw[None, :] * np.linalg.norm(b - a, axis=1)[:, None]
        n_q = len(fw)
        phi, normal = [], []
        for side in (0, 1):
            c = pairs[:, side, 0]
            xi = np.einsum("cab,cxb,cqx->cqa", JtJ_inv[c], J[c], points - vertices[c, None, 0])
            phi.append(element.tabulate(0, xi.reshape(-1, 2))[0].reshape(len(c), n_q, -1))
            if side == 0:
                self.facet_p1 = p1.tabulate(0, xi.reshape(-1, 2))[0, :, :, 0].reshape(
                    len(c), n_q, 3)
            # in-plane co-normal of the edge (a, b), pointing away from the cell's centroid
            plane = np.cross(J[c, :, 0], J[c, :, 1])
            n = np.cross(b - a, plane)
            n /= np.linalg.norm(n, axis=1, keepdims=True)
            inward = np.einsum("cx,cx->c", n, vertices[c].mean(axis=1) - a) > 0
            normal.append(np.where(inward[:, None], -n, n))
        self.facet_phi = np.ascontiguousarray(np.stack(phi, axis=1))  # (F, 2, q, i)
        self.facet_normal = np.ascontiguousarray(np.stack(normal, axis=1))  # (F, 2, 3)

    def residual(self, rho: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The assembled vector L(rho, u)_i of the weak form (local dofs, ghosts included,
        before the reverse scatter)."""
        out = np.zeros_like(rho)
        _cell_terms(rho, u.reshape(-1, 3), self.cells, self.dofs, self.udofs, self.cell_weight,
                    self.cell_phi, self.cell_p1, self.cell_grad, out)
        _facet_terms(rho, u.reshape(-1, 3), self.facet_cells, self.dofs, self.udofs,
                     self.facet_weight, self.facet_phi, self.facet_p1, self.facet_normal, out)
        return out


@numba.njit(cache=True)
def _cell_terms(rho, u, cells, dofs, udofs, weight, phi, p1, grad, out):
    """out_i += sum_q w_q rho(x_q) u(x_q).grad phi_i(x_q) on every cell."""
    n_q, n_i = phi.shape
    for k in range(cells.size):
        c = cells[k]
        for q in range(n_q):
            r = 0.0
            for j in range(n_i):
                r += phi[q, j] * rho[dofs[c, j]]
            u0 = u1 = u2 = 0.0
            for v in range(3):
                u0 += p1[q, v] * u[udofs[c, v], 0]
                u1 += p1[q, v] * u[udofs[c, v], 1]
                u2 += p1[q, v] * u[udofs[c, v], 2]
            f = weight[k, q] * r
            for i in range(n_i):
                g = grad[k, q, i]
                out[dofs[c, i]] += f * (u0 * g[0] + u1 * g[1] + u2 * g[2])


@numba.njit(cache=True)
def _facet_terms(rho, u, facet_cells, dofs, udofs, weight, phi, p1, normal, out):
    """out_i -= sum_q w_q F(x_q) (phi_i^+ - phi_i^-), F the upwind flux with the averaged
    facet speed u_n = (u.n^+ - u.n^-) / 2."""
    n_q, n_i = phi.shape[2], phi.shape[3]
    for f in range(facet_cells.shape[0]):
        cp, cm = facet_cells[f, 0], facet_cells[f, 1]
        for q in range(n_q):
            u0 = u1 = u2 = 0.0
            for v in range(3):
                u0 += p1[f, q, v] * u[udofs[cp, v], 0]
                u1 += p1[f, q, v] * u[udofs[cp, v], 1]
                u2 += p1[f, q, v] * u[udofs[cp, v], 2]
            un = 0.5 * (u0 * (normal[f, 0, 0] - normal[f, 1, 0])
                        + u1 * (normal[f, 0, 1] - normal[f, 1, 1])
                        + u2 * (normal[f, 0, 2] - normal[f, 1, 2]))
            rp = rm = 0.0
            for j in range(n_i):
                rp += phi[f, 0, q, j] * rho[dofs[cp, j]]
                rm += phi[f, 1, q, j] * rho[dofs[cm, j]]
            flux = weight[f, q] * (max(un, 0.0) * rp + min(un, 0.0) * rm)
            for i in range(n_i):
                out[dofs[cp, i]] -= flux * phi[f, 0, q, i]
                out[dofs[cm, i]] += flux * phi[f, 1, q, i]


@numba.njit(cache=True)
def _apply_inverse_mass(vec, dofs, inverse_mass, out):
    """out[dofs_K] = M_K^{-1} vec[dofs_K] for the owned cells K (block-diagonal mass)."""
    n_i = dofs.shape[1]
    for c in range(inverse_mass.shape[0]):
        for i in range(n_i):
            acc = 0.0
            for j in range(n_i):
                acc += inverse_mass[c, i, j] * vec[dofs[c, j]]
            out[dofs[c, i]] = acc


@numba.njit(cache=True)
def _scale_limiter(array, dofs, dof_average, check_basis, average):
    """In place, per owned cell K: rhobar = sum_j a_j rho_j (``average``), m = min of rho at the
    nodes and at the points of ``check_basis``; where m < 0, rho <- rhobar + theta (rho - rhobar)
    with theta = min(max(rhobar, 0) / (rhobar - m), 1)."""
    n_i = dofs.shape[1]
    for c in range(dofs.shape[0]):
        mean = 0.0
        low = np.inf
        for j in range(n_i):
            v = array[dofs[c, j]]
            mean += dof_average[j] * v
            low = min(low, v)
        for q in range(check_basis.shape[0]):
            v = 0.0
            for j in range(n_i):
                v += check_basis[q, j] * array[dofs[c, j]]
            low = min(low, v)
        average[c] = mean
        if low < 0:
            theta = min(max(mean, 0.0) / max(mean - low, 1e-300), 1.0)
            for j in range(n_i):
                array[dofs[c, j]] = mean + theta * (array[dofs[c, j]] - mean)
