"""Pictures of fields on S^2: continuum.sphere.plot."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from continuum.geometry import SPHERE_TOL, fibonacci_sphere  # noqa: E402
from continuum.sphere.plot import (  # noqa: E402
    lonlat,
    mollweide_triangulation,
    plot_sphere_density,
    save_sphere_density,
)


@pytest.fixture
def field():
    pts = fibonacci_sphere(3000)
    return pts, 1.0 + pts[:, 2]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_lonlat_ranges(field):
    pts, _ = field
    lon, lat = lonlat(pts)
    assert np.all(lon > -math.pi) and np.all(lon <= math.pi)
    assert np.all(np.abs(lat) <= math.pi / 2)
    np.testing.assert_allclose(np.sin(lat), pts[:, 2], atol=1e-12)
    np.testing.assert_allclose(np.cos(lat) * np.cos(lon), pts[:, 0], atol=1e-12)
    np.testing.assert_allclose(np.cos(lat) * np.sin(lon), pts[:, 1], atol=1e-12)


@pytest.mark.parametrize("n", [200, 3000])
def test_mollweide_triangulation_has_no_seam_triangles(n):
    pts = fibonacci_sphere(n)
    lon, lat = lonlat(pts)
    tri, index = mollweide_triangulation(lon, lat)
    np.testing.assert_array_equal(index[:n], np.arange(n))
    # the extra vertices are copies: same latitude (or a pole) and lon shifted by 2 pi
    extra_lat = tri.y[n:]
    assert np.all(np.isclose(extra_lat, lat[index[n:]]) | np.isclose(np.abs(extra_lat), math.pi / 2))
    kept = tri.get_masked_triangles()
    assert tri.mask is not None and tri.mask.any()        # the seam slivers were there and are masked
    tx = tri.x[kept]
    assert np.all(tx.max(axis=1) - tx.min(axis=1) < math.pi)
    # every triangle touches the visible map |lon| <= pi
    assert np.all((tx.min(axis=1) < math.pi) & (tx.max(axis=1) > -math.pi))
    # and the kept triangles cover the map: area in (lon, lat) inside [-pi, pi]
    # estimated by locating random points
    rng = np.random.default_rng(0)
    q = np.column_stack([rng.uniform(-math.pi, math.pi, 4000), rng.uniform(-1.5, 1.5, 4000)])
    from matplotlib.tri import Triangulation
    located = Triangulation(tri.x, tri.y, kept).get_trifinder()(q[:, 0], q[:, 1])
    assert np.all(located >= 0)


@pytest.mark.parametrize("projection", ["mollweide", "orthographic"])
@pytest.mark.parametrize("log", [False, True])
def test_plot_returns_figure(field, projection, log):
    pts, vals = field
    fig = plot_sphere_density(pts, vals, projection=projection, log=log, title="1 + z")
    n_axes = 2 if projection == "mollweide" else 3     # + colour bar
    assert len(fig.axes) == n_axes
    mappable = [c for a in fig.axes for c in a.collections]
    assert mappable
    if projection == "mollweide":
        assert fig.axes[0].name == "mollweide"


def test_plot_into_given_axes(field):
    pts, vals = field
    fig = plt.figure()
    ax = fig.add_subplot(1, 1, 1, projection="mollweide")
    assert plot_sphere_density(pts, vals, ax=ax, colorbar=False) is fig
    fig2, axes = plt.subplots(1, 2)
    assert plot_sphere_density(pts, vals, ax=axes, projection="orthographic") is fig2


def test_small_point_set_uses_scatter():
    pts = fibonacci_sphere(40)
    fig = plot_sphere_density(pts, 1.0 + pts[:, 2], colorbar=False)
    assert len(fig.axes[0].collections) == 1


@pytest.mark.parametrize("projection", ["mollweide", "orthographic"])
def test_save_png(field, tmp_path, projection):
    pts, vals = field
    out = save_sphere_density(tmp_path / f"rho_{projection}.png", pts, vals,
                              projection=projection, title="1 + z")
    assert isinstance(out, str)
    assert os.path.isfile(out)
    with open(out, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(out) > 5_000
    assert not plt.get_fignums()                    # figure was closed


def test_picture_is_north_south_gradient(field, tmp_path):
    """1 + z: the map's top rows are bright (viridis yellow), bottom rows dark."""
    pts, vals = field
    out = save_sphere_density(tmp_path / "g.png", pts, vals, colorbar=False)
    img = plt.imread(out)[..., :3]
    h, w = img.shape[:2]
    col = img[:, w // 2]                            # central meridian, top to bottom
    filled = np.flatnonzero(np.abs(col - 1.0).sum(axis=1) > 0.05)   # not white
    top, bottom = col[filled[3]], col[filled[-4]]
    assert top[0] > 0.8 and top[1] > 0.8 and top[2] < 0.4           # yellow
    assert bottom[0] < 0.4 and bottom[1] < 0.2 and bottom[2] > 0.25  # dark purple


def _bad_inputs():
    pts = fibonacci_sphere(300)
    vals = 1.0 + pts[:, 2]
    nan_vals = vals.copy()
    nan_vals[5] = np.nan
    nan_pts = pts.copy()
    nan_pts[3, 0] = np.nan
    off = pts.copy()
    off[7] *= 1.0 + 1e-5
    return [
        (pts[:, :2], vals, {}, "points"),
        (pts.ravel(), vals, {}, "points"),
        (nan_pts, vals, {}, "points"),
        (off, vals, {}, "points"),
        (pts, vals[:-1], {}, "values"),
        (pts, vals[:, None], {}, "values"),
        (pts, nan_vals, {}, "values"),
        (pts, vals, {"projection": "robinson"}, "projection"),
        (pts, -vals, {"log": True}, "values"),
    ]


@pytest.mark.parametrize("pts, vals, kwargs, name", _bad_inputs())
def test_bad_input_raises(pts, vals, kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=name):
        plot_sphere_density(pts, vals, **kwargs)
    with pytest.raises(ValueError, match=name):
        save_sphere_density(tmp_path / "x.png", pts, vals, **kwargs)
    assert not (tmp_path / "x.png").exists()


def test_points_within_tolerance_are_accepted():
    pts = fibonacci_sphere(300) * (1.0 + 0.5 * SPHERE_TOL)
    plot_sphere_density(pts, pts[:, 2] + 1.0, colorbar=False)


def test_bad_axes_raise(field):
    pts, vals = field
    _, plain = plt.subplots()
    with pytest.raises(ValueError, match="ax"):
        plot_sphere_density(pts, vals, ax=plain)                         # not mollweide
    with pytest.raises(ValueError, match="ax"):
        plot_sphere_density(pts, vals, ax=plain, projection="orthographic")  # not two axes
    with pytest.raises(ValueError, match="ax"):
        save_sphere_density("unused.png", pts, vals, ax=plain)


def test_log_floor(field):
    pts, _ = field
    vals = np.where(pts[:, 2] > 0, 1.0, 0.0)        # zeros are clipped to 1e-6 * max
    fig = plot_sphere_density(pts, vals, log=True)
    norm = fig.axes[0].collections[0].norm
    assert norm.vmin == pytest.approx(1e-6)
    assert norm.vmax == pytest.approx(1.0)
