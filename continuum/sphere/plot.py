"""Pictures of scalar fields on the 2-sphere S^2 (pure numpy + matplotlib).

A field is given by its values at points of the unit sphere, e.g. cell averages
of a finite-element density at the cell centroids (projected back onto S^2).
Two projections are offered:

* ``"mollweide"``: equal-area world map in (longitude, latitude), drawn with
  ``tripcolor`` on a Delaunay triangulation of (lon, lat).  The seam
  lon = +-pi is handled by copying the points near the seam across it (so the
  map is filled up to the edge of the ellipse) and masking every triangle whose
  longitude extent is pi or more (these would be long slivers across the map).
* ``"orthographic"``: two discs, the front hemisphere x >= 0 seen from +x and
  the back hemisphere x <= 0 seen from -x, each with ``tripcolor`` on a
  Delaunay triangulation of the projected coordinates.

Nothing here selects a matplotlib backend; pyplot is imported lazily, only when
a figure has to be created or closed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from ..geometry import check_on_sphere

__all__ = ["plot_sphere_density", "save_sphere_density", "lonlat", "mollweide_triangulation"]

_PROJECTIONS = ("mollweide", "orthographic")
_LOG_FLOOR = 1e-6        # log colour scale: values clipped at _LOG_FLOOR * max
_SCATTER_BELOW = 100     # fewer points than this: scatter instead of tripcolor


# ----------------------------------------------------------------------------- validation


def _check_input(points, values) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (M, 3), got {pts.shape}")
    if pts.shape[0] == 0:
        raise ValueError("points must contain at least one point")
    if not np.all(np.isfinite(pts)):
        raise ValueError("points contains NaN or inf")
    check_on_sphere(pts, "points")
    vals = np.asarray(values, dtype=np.float64)
    if vals.shape != (pts.shape[0],):
        raise ValueError(f"values must have shape ({pts.shape[0]},) to match points, got {vals.shape}")
    if not np.all(np.isfinite(vals)):
        raise ValueError("values contains NaN or inf")
    return pts, vals


def _make_norm(vals: np.ndarray, log: bool):
    """Colour normalisation and the (possibly clipped) values to draw."""
    from matplotlib.colors import LogNorm, Normalize

    vmax = float(vals.max())
    if not log:
        return Normalize(vmin=float(vals.min()), vmax=vmax), vals
    if vmax <= 0.0:
        raise ValueError("values must have a positive maximum when log=True")
    clipped = np.maximum(vals, _LOG_FLOOR * vmax)
    vmin = float(clipped.min())
    if vmin == vmax:          # constant field: give LogNorm a non-empty range
        vmin = vmax * 0.5
    return LogNorm(vmin=vmin, vmax=vmax), clipped


# ----------------------------------------------------------------------------- geometry


def lonlat(points) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of points on the unit sphere.

    Parameters
    ----------
    points : array_like, shape (M, 3)
        Points on S^2.

    Returns
    -------
    lon : ndarray, shape (M,)
        ``atan2(y, x)`` in (-pi, pi].
    lat : ndarray, shape (M,)
        ``arcsin(z)`` in [-pi/2, pi/2] (z clipped to [-1, 1] against round-off).
    """
    pts = np.asarray(points, dtype=np.float64)
    lon = np.arctan2(pts[:, 1], pts[:, 0])
    lat = np.arcsin(np.clip(pts[:, 2], -1.0, 1.0))
    return lon, lat


def mollweide_triangulation(lon, lat, wrap=None):
    """Delaunay triangulation of (lon, lat) without triangles across the seam.

    Points with ``|lon| > pi - wrap`` are copied to ``lon -+ 2 pi`` before the
    triangulation, so the strip along the seam lon = +-pi is covered by proper
    triangles (the parts outside the map are clipped by the Mollweide axes).
    Each pole, a line lat = +-pi/2 of the (lon, lat) plane, gets a row of
    vertices carrying the value of the point nearest to it, so the polar caps
    are covered as well.
    Then every triangle whose longitude extent is ``>= pi`` (a sliver joining
    the two sides of the map, or a degenerate hull triangle near a pole), and
    every triangle lying entirely outside ``[-pi, pi]``, is masked.

    Parameters
    ----------
    lon, lat : array_like, shape (M,)
        Longitude in (-pi, pi] and latitude in [-pi/2, pi/2], radians.
    wrap : float, optional
        Width of the copied strip, radians in [0, pi].  Default: ten times the
        mean point spacing ``sqrt(4 pi / M)``, clipped to [0.05, pi/2].

    Returns
    -------
    tri : matplotlib.tri.Triangulation
        Triangulation of the extended point set, with its mask set.
    index : ndarray of int, shape (M + K,)
        ``index[j]`` is the row of the original point behind vertex ``j`` (the
        original points come first, ``index[:M] == arange(M)``), so
        ``values[index]`` are the vertex values.

    Raises
    ------
    ValueError
        If lon and lat do not have the same 1-d shape, or the points cannot be
        triangulated (fewer than 3 or all collinear).
    """
    from matplotlib.tri import Triangulation

    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    if lon.ndim != 1 or lon.shape != lat.shape:
        raise ValueError(f"lon and lat must be 1-d of equal length, got {lon.shape} and {lat.shape}")
    m = lon.shape[0]
    if wrap is None:
        wrap = min(max(10.0 * math.sqrt(4.0 * math.pi / max(m, 1)), 0.05), 0.5 * math.pi)
    if not 0.0 <= wrap <= math.pi:
        raise ValueError(f"wrap must be in [0, pi], got {wrap}")

    east = np.flatnonzero(lon > math.pi - wrap)     # copied to lon - 2 pi
    west = np.flatnonzero(lon < -math.pi + wrap)    # copied to lon + 2 pi
    index = np.concatenate([np.arange(m), east, west])
    x = np.concatenate([lon, lon[east] - 2.0 * math.pi, lon[west] + 2.0 * math.pi])
    y = lat[index]
    if m >= 3:
        # Each pole is a single point of S^2 but a whole line of the (lon, lat)
        # plane: add a row of vertices on lat = +-pi/2 carrying the value of the
        # point nearest to that pole, so the polar caps are covered too.
        k = int(math.ceil((2.0 * math.pi + 2.0 * wrap) / max(wrap / 4.0, 1e-3))) + 1
        row = np.linspace(-math.pi - wrap, math.pi + wrap, k)
        north, south = int(np.argmax(lat)), int(np.argmin(lat))
        x = np.concatenate([x, row, row])
        y = np.concatenate([y, np.full(k, 0.5 * math.pi), np.full(k, -0.5 * math.pi)])
        index = np.concatenate([index, np.full(k, north), np.full(k, south)])
    try:
        tri = Triangulation(x, y)
    except (ValueError, RuntimeError) as exc:   # too few / collinear points
        raise ValueError(f"points cannot be triangulated in (lon, lat): {exc}") from exc

    tx = x[tri.triangles]
    extent = tx.max(axis=1) - tx.min(axis=1)
    outside = (tx.min(axis=1) >= math.pi) | (tx.max(axis=1) <= -math.pi)
    tri.set_mask((extent >= math.pi) | outside)
    return tri, index


def _hemisphere(pts: np.ndarray, front: bool, limb: bool = True):
    """Orthographic coordinates (u, v) of the visible hemisphere, and their rows.

    Front: x >= 0 seen from +x, u = y, v = z.  Back: x <= 0 seen from -x,
    u = -y, v = z (so both discs are oriented as seen from outside).  With
    ``limb=True`` points within a band of the limb are also copied radially
    onto the unit circle (same value), so the triangulated disc reaches the
    limb.  ``rows`` maps every returned vertex to its row in ``pts``.
    """
    m = pts.shape[0]
    depth = pts[:, 0] if front else -pts[:, 0]
    rows = np.flatnonzero(depth >= 0.0)
    u = pts[rows, 1] if front else -pts[rows, 1]
    v = pts[rows, 2]
    if not limb:
        return u, v, rows
    r = np.hypot(u, v)
    band = min(3.0 * math.sqrt(4.0 * math.pi / m), 0.5)
    near = np.flatnonzero((depth[rows] < band) & (r < 1.0 - 1e-9) & (r > 0.0))
    u = np.concatenate([u, u[near] / r[near]])
    v = np.concatenate([v, v[near] / r[near]])
    return u, v, np.concatenate([rows, rows[near]])


def _subdivide(x, y, c, triangles, n):
    """Split each triangle into n^2 (vertices, values linear), appended to x, y, c.

    Returns the extended x, y, c and the (k n^2, 3) array of the new triangles.
    Shared edges get duplicate vertices with equal values, which is harmless
    for drawing.
    """
    k = triangles.shape[0]
    if k == 0:
        return x, y, c, np.empty((0, 3), dtype=triangles.dtype)
    ij = [(i, j) for i in range(n + 1) for j in range(n + 1 - i)]
    local = {p: q for q, p in enumerate(ij)}
    bary = np.array([[n - i - j, i, j] for i, j in ij], dtype=np.float64) / n      # (P, 3)
    sub = [(local[i, j], local[i + 1, j], local[i, j + 1]) for i, j in ij if i + j < n]
    sub += [(local[i + 1, j], local[i + 1, j + 1], local[i, j + 1])
            for i, j in ij if i + j < n - 1]
    sub = np.array(sub)                                                            # (n^2, 3)
    start = x.shape[0]
    new = [bary @ a[triangles].T for a in (x, y, c)]                               # (P, k) each
    offsets = start + np.arange(k) * bary.shape[0]
    fine = (offsets[:, None, None] + sub[None, :, :]).reshape(-1, 3)
    x, y, c = (np.concatenate([a, b.T.ravel()]) for a, b in zip((x, y, c), new))
    return x, y, c, fine


# ----------------------------------------------------------------------------- drawing


def _draw(ax, x, y, c, tri, norm, cmap, marker_size, transform=None):
    """Gouraud tripcolor on tri if given, otherwise scatter; returns the mappable."""
    if tri is not None:
        extra = {} if transform is None else {"transform": transform}
        return ax.tripcolor(tri, c, shading="gouraud", norm=norm, cmap=cmap,
                            rasterized=True, **extra)
    return ax.scatter(x, y, c=c, s=marker_size, norm=norm, cmap=cmap,
                      edgecolors="none", rasterized=True)


def _scatter_size(m: int) -> float:
    return float(np.clip(4000.0 / max(m, 1), 4.0, 40.0))


def _plot_mollweide(pts, vals, ax, norm, cmap):
    import matplotlib.pyplot as plt
    from matplotlib.tri import Triangulation

    if ax is None:
        fig = plt.figure(figsize=(8.0, 4.5))
        ax = fig.add_subplot(1, 1, 1, projection="mollweide")
    elif getattr(ax, "name", None) != "mollweide":
        raise ValueError("ax must be an axes with projection='mollweide' for projection='mollweide', "
                         f"got {getattr(ax, 'name', type(ax).__name__)!r}")
    lon, lat = lonlat(pts)
    tri, index = None, None
    if pts.shape[0] >= _SCATTER_BELOW:
        try:
            tri, index = mollweide_triangulation(lon, lat)
        except ValueError:
            tri = None
    if tri is not None:
        # Project the vertices once here and draw in projected coordinates:
        # handing (lon, lat) triangles to the Mollweide axes would make
        # matplotlib subdivide and project every triangle outline separately,
        # which is orders of magnitude slower for large M.
        # Straight edges in projected coordinates would cut chords off the
        # strongly curved map boundary near the poles, so the triangles of the
        # polar caps are subdivided (in lon, lat) before projecting.
        x, y, c = tri.x, tri.y, vals[index]
        kept = tri.get_masked_triangles()
        cap = 3.0 * math.sqrt(4.0 * math.pi / pts.shape[0])
        polar = np.abs(y[kept]).max(axis=1) >= 0.5 * math.pi - cap
        x, y, c, fine = _subdivide(x, y, c, kept[polar], 8)
        triangles = np.concatenate([kept[~polar], fine])
        xy = ax.transProjection.transform(np.column_stack([x, y]))
        tri_xy = Triangulation(xy[:, 0], xy[:, 1], triangles)
        mappable = _draw(ax, None, None, c, tri_xy, norm, cmap, None,
                         transform=ax.transAffine + ax.transAxes)
    else:
        mappable = _draw(ax, lon, lat, vals, None, norm, cmap, _scatter_size(pts.shape[0]))
    ax.grid(True, color="0.6", linewidth=0.4, alpha=0.6)
    ax.tick_params(labelsize=7)
    return ax.figure, [ax], mappable


def _plot_orthographic(pts, vals, ax, norm, cmap):
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.patches import Circle
    from matplotlib.tri import Triangulation

    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.5))
        axes = list(axes)
    else:
        if isinstance(ax, Axes) or not isinstance(ax, (Sequence, np.ndarray)):
            raise ValueError("ax must be a sequence of two axes for projection='orthographic'")
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) != 2 or not all(isinstance(a, Axes) for a in axes):
            raise ValueError("ax must be a sequence of two axes for projection='orthographic', "
                             f"got {len(axes)} item(s)")
        fig = axes[0].figure

    mappable = None
    for a, front in zip(axes, (True, False)):
        u, v, rows = _hemisphere(pts, front, limb=pts.shape[0] >= _SCATTER_BELOW)
        tri = None
        if pts.shape[0] >= _SCATTER_BELOW:
            try:
                tri = Triangulation(u, v)
            except (ValueError, RuntimeError):    # too few / collinear points
                u, v, rows = _hemisphere(pts, front, limb=False)
        if rows.size:
            mappable = _draw(a, u, v, vals[rows], tri, norm, cmap, _scatter_size(pts.shape[0]))
        a.add_patch(Circle((0.0, 0.0), 1.0, fill=False, color="0.3", linewidth=0.8))
        a.set_xlim(-1.05, 1.05)
        a.set_ylim(-1.05, 1.05)
        a.set_aspect("equal")
        a.set_axis_off()
        a.set_title("front  x > 0 (seen from +x)" if front else "back  x < 0 (seen from -x)",
                    fontsize=9)
    if mappable is None:                 # cannot happen (M >= 1), kept for safety
        raise ValueError("points contains no point to draw")
    return fig, axes, mappable


def plot_sphere_density(points, values, ax=None, projection="mollweide", title=None,
                        cmap="viridis", log=False, colorbar=True):
    """Draw a scalar field given at points of the unit sphere S^2.

    Points are converted to longitude ``lon = atan2(y, x)`` in (-pi, pi] and
    latitude ``lat = arcsin(z)``.

    Parameters
    ----------
    points : array_like, shape (M, 3)
        Points on the unit sphere (``| |p| - 1 | <= 1e-6``), e.g. cell
        centroids of a spherical mesh projected onto S^2.  M up to ~1e6 is fine.
    values : array_like, shape (M,)
        Finite field values at the points, e.g. cell averages of a density.
    ax : matplotlib Axes or sequence of two Axes, optional
        Where to draw.  For ``"mollweide"`` an axes created with
        ``projection="mollweide"``; for ``"orthographic"`` a sequence of two
        (ordinary) axes, front then back.  If None a new figure is created
        (via pyplot, so close it when done).
    projection : {"mollweide", "orthographic"}
        ``"mollweide"``: equal-area map; ``tripcolor`` on a Delaunay
        triangulation of (lon, lat) in which triangles spanning pi or more in
        longitude (the seam lon = +-pi) are masked, see
        :func:`mollweide_triangulation`.  ``"orthographic"``: two discs, the
        hemisphere x >= 0 seen from +x (horizontal y, vertical z) and the
        hemisphere x <= 0 seen from -x (horizontal -y, vertical z), each
        ``tripcolor`` on a Delaunay triangulation of the projected points.
        With fewer than 100 points (or degenerate point sets) ``scatter`` is
        used instead of ``tripcolor``.
    title : str, optional
        Axes title (mollweide) or figure suptitle (orthographic).
    cmap : str or matplotlib Colormap
        Colour map.
    log : bool
        Logarithmic colour scale (``LogNorm``).  Values should be > 0; they are
        clipped from below at the floor ``1e-6 * max(values)``, so zeros and
        small negative round-off values are shown at the floor colour.  The
        maximum must be positive.
    colorbar : bool
        Add a colour bar (shared by both discs for ``"orthographic"``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into.

    Raises
    ------
    ValueError
        If points is not (M, 3), not finite or off the unit sphere by more than
        1e-6; if values is not (M,) or not finite; if projection is unknown;
        if ax does not fit the projection; if log=True and max(values) <= 0.

    Notes
    -----
    ``tripcolor`` is used with ``shading="gouraud"``: colours are interpolated
    linearly inside each triangle between the point values.  The coloured
    patches are rasterized, so vector outputs (PDF, SVG) stay small.  For
    ``"mollweide"`` the triangle vertices are projected once with the axes'
    ``transProjection`` and drawn in projected coordinates (triangles are
    straight there; fine because they are small), which keeps M ~ 1e6
    feasible; the Delaunay triangulation itself (matplotlib's qhull) is then
    the dominant cost, of the order of 10 s per million points.
    """
    if projection not in _PROJECTIONS:
        raise ValueError(f"projection must be one of {_PROJECTIONS}, got {projection!r}")
    pts, vals = _check_input(points, values)
    norm, vals = _make_norm(vals, log)

    if projection == "mollweide":
        fig, axes, mappable = _plot_mollweide(pts, vals, ax, norm, cmap)
        if title is not None:
            axes[0].set_title(title)
    else:
        fig, axes, mappable = _plot_orthographic(pts, vals, ax, norm, cmap)
        if title is not None:
            fig.suptitle(title)
    if colorbar:
        fig.colorbar(mappable, ax=axes, shrink=0.75, pad=0.04)
    return fig


def save_sphere_density(path, points, values, **kwargs) -> str:
    """Draw a field on S^2 with :func:`plot_sphere_density` and save it as PNG.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; written as PNG (dpi 120, ``bbox_inches="tight"``).
    points : array_like, shape (M, 3)
        Points on the unit sphere.
    values : array_like, shape (M,)
        Field values at the points.
    **kwargs
        Passed to :func:`plot_sphere_density` (projection, title, cmap, log,
        colorbar).  ``ax`` is not accepted: the figure is created and closed
        here.

    Returns
    -------
    str
        ``path`` as a string.

    Raises
    ------
    ValueError
        If ``ax`` is given, or for the reasons listed in
        :func:`plot_sphere_density`.
    """
    import matplotlib.pyplot as plt

    if "ax" in kwargs:
        raise ValueError("ax is not accepted by save_sphere_density (it creates its own figure)")
    fig = plot_sphere_density(points, values, **kwargs)
    try:
        fig.savefig(path, dpi=120, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)
    return str(os.fspath(path))
