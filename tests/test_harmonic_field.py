"""The O(M + N) field on S^2 by the spherical-harmonic expansion and nonuniform transforms
(continuum.sphere.harmonic) against the direct sum, the "auto" choice, and the DG solver."""

import math

import numpy as np
import pytest
import scipy.special

from continuum import Attention, solve
from continuum.geometry import normalize, uniform_points
from continuum.kernels import attention_field
from continuum.sphere import harmonic as transform
from continuum.sphere.solver import choose_sphere_path


def clouds(n, rng):
    """Uniform, one concentrated cluster, and two unequal clusters (near-antipodal)."""
    one = normalize(np.array([1.0, 0.2, 0.1]) + 0.05 * rng.standard_normal((n, 3)))
    sign = np.where(rng.random((n, 1)) < 0.7, 1.0, -1.0)
    two = normalize(sign * np.array([0.2, 1.0, 0.3]) + 0.03 * rng.standard_normal((n, 3)))
    return {"uniform": uniform_points(n, 3, rng), "concentrated": one, "two-cluster": two}


def model_of(beta, zonal, normalized, rng):
    A = np.linalg.qr(rng.standard_normal((3, 3)))[0] if zonal else rng.standard_normal((3, 3))
    return Attention(beta=beta, d=3, Q=np.eye(3), K=A / np.linalg.norm(A, 2),
                     V=rng.standard_normal((3, 3)), normalized=normalized)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 4.0, 9.0])
@pytest.mark.parametrize("zonal", [True, False])
@pytest.mark.parametrize("normalized", [True, False])
def test_expansion_matches_direct_sum_within_its_bound(beta, zonal, normalized):
    """|fast - direct| <= b(x) x scale at every target, b the bound of the module docstring
    (scale ||V|| for SA, ||V|| e^kappa S_1(x) for USA), on uniform and clustered clouds (zonal
    with kappa >= 0.5: S_y from the gradient of S_1; beta = 0.5 is its smallest kappa)."""
    rng = np.random.default_rng(int(10 * beta) + 2 * zonal + normalized)
    model = model_of(beta, zonal, normalized, rng)
    x = uniform_points(300, 3, rng)
    for name, y in clouds(2000, rng).items():
        w = rng.random(len(y))
        ref = attention_field(x, y, w, model, method="direct")
        got, bound = transform.harmonic_field(x, y, w, model)
        scale = np.linalg.norm(model.V, 2)
        if not normalized:
            kappa = model.beta * np.linalg.norm(model.A, 2)
            scale = scale * np.exp(kappa) * (np.exp(model.beta * (x @ model.A) @ y.T - kappa) @ w)
        err = np.linalg.norm(got - ref, axis=1) / scale
        assert np.all(err <= bound), (name, (err / bound).max())
        if beta <= 1.0:  # dynamic range e^{2 kappa} <= e^2: the bound itself is tiny
            assert bound.max() < 1e-10, name


def test_auto_recomputes_untrusted_targets_directly(monkeypatch):
    """kappa = 9, a concentrated cloud: far targets have b > 1e-10 and get the direct sum, so
    "auto" equals the direct sum to 1e-10 everywhere."""
    rng = np.random.default_rng(5)
    model = Attention(beta=9.0, d=3, V=rng.standard_normal((3, 3)))
    y = clouds(3000, rng)["concentrated"]
    x = uniform_points(400, 3, rng)
    w = np.full(len(y), 1 / len(y))
    monkeypatch.setattr(transform, "TRANSFORM_MIN_PAIRS", 1)
    _, bound = transform.harmonic_field(x, y, w, model)
    assert np.any(bound > transform.TRUSTED_BOUND) and np.any(bound <= transform.TRUSTED_BOUND)
    ref = attention_field(x, y, w, model, method="direct")
    got = attention_field(x, y, w, model)
    err = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(model.V, 2)
    assert err.max() <= transform.TRUSTED_BOUND


def test_auto_choice():
    zonal = Attention(beta=1.0, d=3)
    sharp = Attention(beta=20.0, d=3)
    big = transform.TRANSFORM_MIN_PAIRS
    assert transform.transform_preferred(zonal, big, 1)
    assert not transform.transform_preferred(zonal, big - 1, 1)
    assert not transform.transform_preferred(sharp, big, 1)  # kappa > AUTO_MAX_KAPPA
    assert not transform.transform_preferred(Attention(beta=1.0, d=4), big, 1)


def test_real_coordinates_round_trip_and_orthonormality():
    """to_real / from_real are inverse; the analysis of phi_p on the Gauss grid returns e_p."""
    import ducc0

    L = 6
    rng = np.random.default_rng(0)
    r = rng.standard_normal((2, (L + 1) ** 2))
    np.testing.assert_allclose(transform.to_real(transform.from_real(r, L), L), r, atol=1e-15)
    grid, shape = transform.gauss_grid(L)
    for p in (0, 3, 10, 30, 48):
        e = np.zeros((L + 1) ** 2)
        e[p] = 1.0
        values = ducc0.sht.synthesis_2d(alm=transform.from_real(e, L)[None], spin=0, lmax=L,
                                        geometry="GL", ntheta=shape[0], nphi=shape[1])
        back = ducc0.sht.analysis_2d(map=values, spin=0, lmax=L, geometry="GL")[0]
        np.testing.assert_allclose(transform.to_real(back, L), e, atol=1e-13)


def test_kernel_matrix_reproduces_the_kernel():
    """sum_pq K_pq phi_p(x) phi_q(y) = e^{beta <x, A y> - kappa} at random pairs (general A)."""
    import ducc0

    rng = np.random.default_rng(1)
    A, beta = rng.standard_normal((3, 3)), 2.0
    L = transform.harmonic_degree(beta * np.linalg.norm(A, 2))
    K = transform.kernel_matrix(A, beta, L)
    x, y = uniform_points(20, 3, rng), uniform_points(20, 3, rng)

    def phi(points):  # (P, n): every real harmonic at the points
        P = (L + 1) ** 2
        return np.stack([ducc0.sht.synthesis_general(
            alm=transform.from_real(np.eye(P)[p], L)[None], spin=0, lmax=L,
            loc=transform._loc(points), epsilon=1e-13)[0] for p in range(P)])

    kappa = beta * np.linalg.norm(A, 2)
    exact = np.exp(beta * np.einsum("ij,jk,ik->i", x, A, y) - kappa)
    got = np.einsum("pi,pq,qi->i", phi(x), K, phi(y))
    assert np.abs(got - exact).max() <= 1e-12


def test_measure_field_and_particles_use_the_fast_path(monkeypatch):
    """Measure.field and simulate go through attention_field: with the threshold lowered they
    take the expansion (results equal the direct ones to the bound)."""
    from continuum import Measure
    from particles import simulate

    rng = np.random.default_rng(3)
    model = Attention(beta=1.0, d=3, V=np.diag([1.0, 0.9, 0.8]))
    x0 = uniform_points(3000, 3, rng)
    calls = {"n": 0}
    real = transform.harmonic_field

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(transform, "harmonic_field", counted)
    monkeypatch.setattr(transform, "TRANSFORM_MIN_PAIRS", 1)
    mu = Measure(x0)
    fast = mu.field(model)
    assert calls["n"] == 1
    np.testing.assert_allclose(fast, attention_field(x0, x0, mu.weights, model, "direct"),
                               atol=1e-12)
    traj = simulate(model, x0, 0.5, times=[0.0, 0.5], dt=0.01, progress=False)
    ref = simulate(model, x0, 0.5, times=[0.0, 0.5], dt=0.01, field="direct", progress=False)
    assert calls["n"] > 1
    # the expansion evaluates RK stages at x / |x| (module docstring): another smooth extension
    # of the same field off the sphere, so both RK4 solutions are within the RK4 error
    # O((dt L)^4) ~ 1e-8 of the exact one (the tolerance of test_particles' RK4 check)
    assert np.abs(traj.points - ref.points).max() < 1e-6


def test_particles_at_1e5_tokens_on_s2():
    """N = 10^5 tokens, general Q, K, V in d = 3, RK4, a few steps: runs in seconds."""
    from particles import simulate

    rng = np.random.default_rng(4)
    model = Attention(beta=1.0, d=3, Q=rng.standard_normal((3, 3)) / 2,
                      K=rng.standard_normal((3, 3)) / 2, V=rng.standard_normal((3, 3)) / 2)
    x0 = uniform_points(100_000, 3, rng)
    w = np.full(len(x0), 1 / len(x0))
    fast = attention_field(x0, x0, w, model)  # "auto" takes the expansion at 10^10 pairs
    ref = attention_field(x0[:200], x0, w, model, method="direct")
    assert np.abs(fast[:200] - ref).max() <= transform.TRUSTED_BOUND * np.linalg.norm(model.V, 2)
    traj = simulate(model, x0, 0.1, times=[0.0, 0.1], dt=0.05, progress=False)
    assert np.abs(np.linalg.norm(traj.points[-1], axis=1) - 1).max() < 1e-14
    assert traj.info["steps"] == 2


def test_degree_and_zonal_detection():
    assert transform.harmonic_degree(0.0) == 0
    assert transform.harmonic_degree(1.0) < transform.harmonic_degree(4.0) \
        < transform.harmonic_degree(9.0)
    assert transform.zonal_factor(2.0 * np.eye(3))[0] == pytest.approx(2.0)
    assert transform.zonal_factor(np.diag([1.0, 1.0, 0.5])) is None
    with pytest.raises(ValueError, match="kappa"):
        transform.harmonic_degree(-1.0)


def test_dg_path_choice_and_errors():
    zonal = Attention(beta=1.0, d=3)
    skew = Attention(beta=1.0, d=3, Q=np.diag([1.0, 0.8, 0.6]))
    hot = Attention(beta=20.0, d=3)
    level3, level4 = (642, 1280), (2562, 5120)  # (vertices, cells)
    assert choose_sphere_path(zonal, "auto", *level4) == "harmonic"
    assert choose_sphere_path(skew, "auto", *level4) == "harmonic"  # any A now
    assert choose_sphere_path(zonal, "auto", *level3) == "harmonic"  # tables
    assert choose_sphere_path(skew, "auto", *level3) == "kernel"  # below the crossover
    assert choose_sphere_path(hot, "auto", *level4) == "kernel"  # beta ||A|| > 9
    warm = Attention(beta=12.0, d=3)  # kappa 12 > 9: "auto" avoids it, degree <= MAX_DEGREE
    assert choose_sphere_path(warm, "auto", *level4) == "kernel"
    assert transform.expansion_degree(warm) <= transform.MAX_DEGREE
    assert choose_sphere_path(warm, "harmonic") == "harmonic"
    with pytest.raises(ValueError, match="field"):
        choose_sphere_path(zonal, "fft")
    with pytest.raises(ValueError, match="degree"):
        choose_sphere_path(Attention(beta=40.0, d=3), "harmonic")
    with pytest.raises(ValueError, match="field"):
        solve(zonal, lambda p: np.full(len(p), 1 / (4 * np.pi)), 1.0, method="fem",
              resolution=2, field="fast")


@pytest.mark.parametrize("Q", [np.eye(3), np.diag([1.0, 0.8, 0.6])])
def test_fem_solution_same_with_either_field_path(Q):
    """The DG solution does not depend on how the (identical to round-off) field is computed:
    the scheme is stable, so round-off differences stay at round-off level."""
    model = Attention(beta=1.0, d=3, Q=Q, V=np.diag([1.0, 0.9, 0.7]))
    rho0 = lambda p: np.exp(3.0 * (p[:, 0] - 1.0)) / (2 * math.pi * (1 - math.exp(-6.0)) / 3.0)
    runs = {f: solve(model, rho0, 1.0, method="fem", resolution=2, times=[0.0, 1.0], field=f)
            for f in ("kernel", "harmonic")}
    assert runs["harmonic"].info["field"] == "harmonic"
    # field="harmonic": a zonal kernel (kappa = 1) takes ZonalTransforms, the other one
    # attention_field's transforms
    zonal = transform.zonal_factor(model.A) is not None
    assert runs["harmonic"].info["field_evaluator"] == ("ZonalTransforms" if zonal
                                                        else "attention_field")
    a, b = runs["kernel"].densities[-1], runs["harmonic"].densities[-1]
    assert np.max(np.abs(a - b)) <= 1e-10 * np.max(np.abs(a))


# ------------------------------------------------------------------ tables (DG solver)

U = np.finfo(float).eps


def _sphere_points(rng, n, centre=None, spread=None):
    p = rng.normal(size=(n, 3))
    if centre is not None:  # concentrated cloud: centre + spread * noise
        p = np.asarray(centre) + spread * p
    return p / np.linalg.norm(p, axis=1)[:, None]


def test_addition_theorem():
    """sum_m Y_lm(x) Y_lm(y) = (2l + 1) / (4 pi) P_l(<x, y>): orthonormal real harmonics."""
    rng = np.random.default_rng(1)
    x, y = _sphere_points(rng, 40), _sphere_points(rng, 40)
    L = 24
    Yx, Yy = transform.sphere_harmonics(x, L), transform.sphere_harmonics(y, L)
    t = np.einsum("ij,ij->i", x, y)
    for l in range(L + 1):
        block = slice(l * l, (l + 1) ** 2)
        lhs = (Yx[:, block] * Yy[:, block]).sum(axis=1)
        rhs = (2 * l + 1) / (4 * math.pi) * scipy.special.eval_legendre(l, t)
        # round-off of a sum of 2l + 1 products of O(sqrt((2l + 1) / 4 pi)) numbers
        assert np.max(np.abs(lhs - rhs)) <= 100 * (2 * l + 1) ** 2 * U


def test_poles_are_regular():
    Y = transform.sphere_harmonics(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]), 10)
    assert np.all(np.isfinite(Y))
    # only m = 0 survives at the poles: Y_l0(+-e3) = +-^l sqrt((2l + 1) / 4 pi)
    for l in range(11):
        assert Y[0, l * l + l] == pytest.approx(math.sqrt((2 * l + 1) / (4 * math.pi)))
        assert Y[1, l * l + l] == pytest.approx((-1) ** l * math.sqrt((2 * l + 1) / (4 * math.pi)))


@pytest.mark.parametrize("beta", [0.5, 1.0, 4.0, 9.0])
@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("concentrated", [False, True])
def test_tables_match_the_direct_sum(beta, normalized, concentrated):
    rng = np.random.default_rng(int(beta * 10) + 2 * normalized + concentrated)
    R, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # A = Q^T K = 0.7 R (R orthogonal)
    model = Attention(beta=beta, d=3, Q=0.7 * np.eye(3), K=R, V=rng.normal(size=(3, 3)),
                      normalized=normalized)
    targets = _sphere_points(rng, 500)
    sources = (_sphere_points(rng, 800, centre=[1.0, 0, 0], spread=0.05) if concentrated
               else _sphere_points(rng, 800))
    weights = rng.random(800)
    weights /= weights.sum()
    hf = transform.HarmonicTables(targets, sources, model)
    exact = attention_field(targets, sources, weights, model)
    kappa = hf.kappa
    assert kappa == pytest.approx(0.7 * beta)
    # module docstring: tail <= 1e-16 e^{-kappa}; round-off ~ (L + 1)^2 u e^{2 kappa}
    bound = 10 * (hf.L + 1) ** 2 * U * math.exp(2 * kappa)
    err = np.max(np.abs(hf(weights) - exact)) / np.max(np.abs(exact))
    assert err <= bound, (err, bound)


def test_tables_preferred_only_for_small_sets_and_kappa():
    zonal = Attention(beta=1.0, d=3)
    level4, level5 = (2562, 5120), (10242, 20480)
    assert transform.tables_preferred(zonal, *level4)
    assert not transform.tables_preferred(zonal, *level5)  # transforms faster (measured)
    assert not transform.tables_preferred(Attention(beta=4.0, d=3), *level4)  # kappa > 2
    assert not transform.tables_preferred(Attention(beta=1.0, d=3, Q=np.diag([1, 0.8, 0.6])),
                                          *level4)  # not zonal


@pytest.mark.parametrize("beta", [0.01, 1.0, 4.0])
@pytest.mark.parametrize("zonal", [True, False])
def test_energy_by_expansion_matches_the_double_sum(beta, zonal):
    """E = (e^kappa sum_i w_i S_1(x_i) - m^2) / (2 beta) within the error model's bound
    eps e^kappa m^2 / beta (returned with it), plus the double sum's round-off (1e-13); the
    dispatcher takes the expansion at 3000 points (9e6 >= 2^22 pairs)."""
    from continuum.direct import interaction_energy as direct_energy
    from continuum.kernels import interaction_energy

    rng = np.random.default_rng(7)
    model = model_of(beta, zonal, True, rng)
    for x in clouds(3000, rng).values():
        w = rng.random(len(x))
        w /= w.sum()
        exact = direct_energy(x, w, model)
        value, bound = transform.harmonic_energy(x, w, model)
        assert abs(value - exact) <= bound + 1e-13
        assert interaction_energy(x, w, model) == value


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("where", ["on", "off"])
def test_zonal_gradient_form_equals_the_four_transform_form(normalized, where, monkeypatch):
    """S_y from the gradient of S_1 (one transform of the weights; two for sources off the
    sphere, as at Runge-Kutta stages, where S_y = sum_j w_j y_j k(x, y_j / |y_j|) takes the
    weights w_j |y_j|) against the four-transform form (forced by GRADIENT_MIN_KAPPA = inf):
    both within the bound b of the exact sums, so within 2 b of each other. Radii 1 +- 1e-3
    off the sphere: a wrong radial weighting would differ by ~1e-3, far above 2 b."""
    rng = np.random.default_rng(11)
    model = model_of(2.0, True, normalized, rng)
    x = uniform_points(300, 3, rng)
    y = clouds(2000, rng)["two-cluster"]
    if where == "off":
        y = y * rng.uniform(0.999, 1.001, (len(y), 1))
    w = rng.random(len(y))
    calls = []
    real = transform._zonal_gradient_sums
    monkeypatch.setattr(transform, "_zonal_gradient_sums",
                        lambda *a: calls.append(1) or real(*a))
    fast, bound = transform.harmonic_field(x, y, w, model)
    assert calls  # the gradient form ran
    monkeypatch.setattr(transform, "GRADIENT_MIN_KAPPA", math.inf)
    four, _ = transform.harmonic_field(x, y, w, model)
    assert len(calls) == 1  # the four-transform form ran
    scale = np.linalg.norm(model.V, 2)
    if not normalized:  # USA: the field's scale ||V|| e^kappa S_1
        kappa = model.beta * np.linalg.norm(model.A, 2)
        unit = y / np.linalg.norm(y, axis=1, keepdims=True)
        scale = scale * np.exp(kappa) * (np.exp(model.beta * (x @ model.A) @ unit.T - kappa) @ w)
    assert np.all(np.linalg.norm(fast - four, axis=1) / scale <= 2 * bound)


@pytest.mark.parametrize("normalized", [True, False])
def test_fixed_points_field_is_the_auto_field(normalized, monkeypatch):
    """The DG solver's evaluator for fixed points: ZonalTransforms (angles computed once) where
    "auto" takes the expansion and the kernel is zonal with kappa in [0.5, 2], else the tables
    for small sets, else None; both equal attention_field to its bound (4 eps e^{2 kappa} <=
    TRUSTED_BOUND here, so "auto" keeps every target), and ZonalTransforms repeats
    harmonic_field's sums exactly."""
    rng = np.random.default_rng(13)
    model = model_of(1.5, True, normalized, rng)
    x = uniform_points(300, 3, rng)
    y = clouds(2000, rng)["two-cluster"]
    w = rng.random(len(y))
    assert isinstance(transform.fixed_points_field(model, x, y), transform.HarmonicTables)
    assert transform.fixed_points_field(model, x, y, field="kernel") is None
    plan = transform.fixed_points_field(model, x, y, field="harmonic")
    assert isinstance(plan, transform.ZonalTransforms)
    monkeypatch.setattr(transform, "TRANSFORM_MIN_PAIRS", 1)  # as if the sets were large
    assert isinstance(transform.fixed_points_field(model, x, y), transform.ZonalTransforms)
    monkeypatch.setattr(transform, "TABLES_MAX_ENTRIES", 0)
    off = y * rng.uniform(0.999, 1.001, (len(y), 1))  # sources off the sphere (RK stages)
    assert np.array_equal(transform.fixed_points_field(model, x, off)(w),
                          transform.harmonic_field(x, off, w, model)[0])
    assert transform.fixed_points_field(model_of(3.0, True, normalized, rng), x, y) is None
    assert transform.fixed_points_field(model_of(1.0, False, normalized, rng), x, y) is None
    fast, bound = transform.harmonic_field(x, y, w, model)
    assert np.array_equal(plan(w), fast)
    ref = attention_field(x, y, w, model, method="direct")
    scale = np.linalg.norm(model.V, 2)
    if not normalized:
        kappa = model.beta * np.linalg.norm(model.A, 2)
        scale = scale * np.exp(kappa) * (np.exp(model.beta * (x @ model.A) @ y.T - kappa) @ w)
    assert np.all(np.linalg.norm(plan(w) - ref, axis=1) / scale <= bound)
    assert bound.max() <= 4 * transform.EPSILON * math.exp(2 * 1.5) <= transform.TRUSTED_BOUND
    with pytest.raises(ValueError, match="weights"):
        plan(w[:-1])
