"""Icosphere triangulations of the unit sphere S^2 (pure numpy).

Geometry
--------
Level 0 is the regular icosahedron inscribed in the unit sphere: 12 vertices
(cyclic permutations of ``(0, +-1, +-phi)``, ``phi = (1 + sqrt 5)/2``, scaled
to unit norm) and 20 faces, each listed counter-clockwise seen from outside,
so ``(v1 - v0) x (v2 - v0)`` points away from the origin.  Each refinement
level splits every triangle into 4 through its edge midpoints; a midpoint is
created once per edge (shared by both neighbouring triangles, so the mesh is
conforming) and projected radially onto the sphere.  Level ``k`` has
``F = 20 * 4**k`` triangles, ``E = 30 * 4**k`` edges and ``V = 10 * 4**k + 2``
vertices (``V - E + F = 2``).  Orientation is inherited by the children.

Geometric error
---------------
All vertices lie exactly on S^2 but the faces are flat, so the polyhedron is
inscribed in the sphere and its area ``A`` underestimates ``4 pi``.  A flat
triangle with circumradius ``r`` in a unit sphere sits at distance
``sqrt(1 - r**2) = 1 - r**2/2 + O(r**4)`` from the centre, and its area is
smaller than that of the spherical triangle it subtends by a factor
``1 - O(h**2)``; hence, with ``h`` the longest edge,

    A = 4 pi (1 - O(h**2)),   i.e.   4 pi - A = C h**2 + O(h**4).

Measured for levels 0..6 (h = longest edge):

    level   h         4 pi - A     (4 pi - A) / h**2
    0       1.0515    2.992        2.706
    1       0.6180    0.9004       2.357
    2       0.3249    0.2365       2.240
    3       0.1646    0.05988      2.209
    4       0.08260   0.01502      2.2008
    5       0.04134   0.003757     2.1987
    6       0.02067   0.0009395    2.1982

so ``4 pi - A ~= 2.198 h**2`` asymptotically (relative error
``(4 pi - A) / (4 pi) ~= 0.175 h**2``); each level divides ``h`` by about 2
and the area error by about 4.
"""

from __future__ import annotations

import numbers

import numpy as np

MAX_LEVEL = 9
"""Largest accepted level (20 * 4**9 ~= 5.2 million triangles)."""

_PHI = (1.0 + np.sqrt(5.0)) / 2.0

_ICO_VERTICES = np.array(
    [
        [-1.0, _PHI, 0.0],
        [1.0, _PHI, 0.0],
        [-1.0, -_PHI, 0.0],
        [1.0, -_PHI, 0.0],
        [0.0, -1.0, _PHI],
        [0.0, 1.0, _PHI],
        [0.0, -1.0, -_PHI],
        [0.0, 1.0, -_PHI],
        [_PHI, 0.0, -1.0],
        [_PHI, 0.0, 1.0],
        [-_PHI, 0.0, -1.0],
        [-_PHI, 0.0, 1.0],
    ]
)

# Counter-clockwise seen from outside (outward normals).
_ICO_TRIANGLES = np.array(
    [
        [0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
        [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
        [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
        [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1],
    ],
    dtype=np.int64,
)


def check_level(level) -> int:
    if isinstance(level, bool) or not isinstance(level, numbers.Integral):
        raise ValueError(f"level must be an int >= 0, got {level!r}")
    level = int(level)
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    if level > MAX_LEVEL:
        raise ValueError(
            f"level={level} is too large: at most {MAX_LEVEL} is allowed "
            f"(level {level} would have {20 * 4**level} triangles)"
        )
    return level


def _edges(triangles: np.ndarray) -> np.ndarray:
    """Unique undirected edges ``(E, 2)``, each sorted ``i < j``."""
    e = np.concatenate(
        [triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]
    )
    return np.unique(np.sort(e, axis=1), axis=0)


def _refine(vertices: np.ndarray, triangles: np.ndarray):
    """Split each triangle into 4 via shared, sphere-projected edge midpoints."""
    nt = len(triangles)
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    # Half-edges ab, bc, ca of every triangle, as sorted pairs.
    half = np.concatenate(
        [np.stack([a, b], 1), np.stack([b, c], 1), np.stack([c, a], 1)]
    )
    half.sort(axis=1)
    # Encode each sorted pair as one int64 key (1-D unique is much faster).
    nv = np.int64(len(vertices))
    keys, inverse = np.unique(half[:, 0] * nv + half[:, 1], return_inverse=True)
    mid = vertices[keys // nv] + vertices[keys % nv]
    mid /= np.linalg.norm(mid, axis=1, keepdims=True)
    m = len(vertices) + inverse.reshape(3, nt)
    ab, bc, ca = m[0], m[1], m[2]
    new = np.concatenate(
        [
            np.stack([a, ab, ca], 1),
            np.stack([b, bc, ab], 1),
            np.stack([c, ca, bc], 1),
            np.stack([ab, bc, ca], 1),
        ]
    )
    return np.concatenate([vertices, mid]), new


def icosphere(level: int):
    """Icosphere triangulation of the unit sphere.

    Parameters
    ----------
    level : int
        Number of 1-to-4 refinements of the icosahedron, ``0 <= level <= 9``.

    Returns
    -------
    vertices : ndarray of float64, shape (10 * 4**level + 2, 3)
        Vertex coordinates, ``|x| = 1`` to rounding.
    triangles : ndarray of int64, shape (20 * 4**level, 3)
        Vertex indices, counter-clockwise seen from outside, so that
        ``(x1 - x0) x (x2 - x0) . x0 > 0``.

    Raises
    ------
    ValueError
        If ``level`` is not an integer in ``[0, 9]``.
    """
    level = check_level(level)
    vertices = _ICO_VERTICES / np.linalg.norm(_ICO_VERTICES, axis=1, keepdims=True)
    triangles = _ICO_TRIANGLES.copy()
    for _ in range(level):
        vertices, triangles = _refine(vertices, triangles)
    return vertices, triangles


def polyhedron_area(vertices, triangles) -> float:
    """Area of the flat triangulated surface.

    ``A = sum_T |(x1 - x0) x (x2 - x0)| / 2``.

    Parameters
    ----------
    vertices : array_like, shape (nv, 3)
    triangles : array_like of int, shape (nt, 3)

    Returns
    -------
    float
    """
    x = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(triangles)
    cross = np.cross(x[t[:, 1]] - x[t[:, 0]], x[t[:, 2]] - x[t[:, 0]])
    return float(0.5 * np.linalg.norm(cross, axis=1).sum())


def mesh_size(vertices, triangles) -> float:
    """Mesh size ``h = max_edges |x_i - x_j|`` (longest edge length).

    Parameters
    ----------
    vertices : array_like, shape (nv, 3)
    triangles : array_like of int, shape (nt, 3)

    Returns
    -------
    float
    """
    x = np.asarray(vertices, dtype=np.float64)
    e = _edges(np.asarray(triangles))
    return float(np.linalg.norm(x[e[:, 0]] - x[e[:, 1]], axis=1).max())
