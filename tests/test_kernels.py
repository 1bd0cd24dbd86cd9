import numpy as np
import pytest

from continuum import Attention
from continuum.geometry import uniform_points
from continuum.kernels import attention_field
from continuum.model import random_model
from validation.kernel_reference import numpy_field


@pytest.mark.parametrize("d", [2, 3, 8, 16, 64])  # both kernel paths (GEMM from d = 12)
@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("beta", [0.0, 1.0, 10.0, 50.0])
def test_kernel_matches_numpy_reference(d, normalized, beta):
    rng = np.random.default_rng(d * 100 + int(beta))
    model = random_model(d, beta, normalized, rng)
    x = uniform_points(200, d, rng)
    y = uniform_points(600, d, rng)  # not a multiple of the block size
    w = rng.random(600)
    w /= w.sum()
    ref = numpy_field(x, y, w, model)
    got = attention_field(x, y, w, model)
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()


def test_field_is_tangent_and_dirac_field_is_exact():
    rng = np.random.default_rng(0)
    model = random_model(3, 2.0, True, rng)
    x = uniform_points(100, 3, rng)
    y = uniform_points(1, 3, rng)
    field = attention_field(x, y, np.ones(1), model)
    np.testing.assert_allclose(np.einsum("ij,ij->i", x, field), 0.0, atol=1e-15)
    v = model.V @ y[0]  # SA with one source: X(x) = P_x V y exactly
    np.testing.assert_allclose(field, v - (x @ v)[:, None] * x, atol=1e-15)


def test_beta_500_is_finite_and_accurate_far_from_sources():
    rng = np.random.default_rng(1)
    model = Attention(beta=500.0, d=3)
    y = uniform_points(2000, 3, rng)
    y = y[y[:, 2] > 0.9]  # a small cap
    x = -y[:50]  # antipodal targets: every score is far below the shift bound
    w = np.full(len(y), 1.0 / len(y))
    assert _fallback_is_needed(x, y, model)
    got = attention_field(x, y, w, model)
    ref = numpy_field(x, y, w, model)
    assert np.isfinite(got).all()
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()
    # generic points at beta = 500
    x2 = uniform_points(300, 3, rng)
    got2 = attention_field(x2, x2, np.full(300, 1 / 300), model)
    ref2 = numpy_field(x2, x2, np.full(300, 1 / 300), model)
    assert np.isfinite(got2).all()
    assert np.abs(got2 - ref2).max() <= 1e-12 * np.abs(ref2).max()


def test_usa_overflow_is_an_error_not_inf():
    model = Attention(beta=800.0, d=3, normalized=False)  # e^800 > float64 max
    x = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    with pytest.raises(FloatingPointError, match="beta"):
        attention_field(x, x, np.array([0.5, 0.5]), model)


@pytest.mark.parametrize("mutate, word", [
    (lambda x, y, w: (x[:, :2], y, w), "targets"),
    (lambda x, y, w: (x, y[:, :2], w), "sources"),
    (lambda x, y, w: (x, y, w[:-1]), "weights"),
    (lambda x, y, w: (x, y, -w), "weights"),
    (lambda x, y, w: (x, y, 0 * w), "weights"),
    (lambda x, y, w: (np.where(x > 0.5, np.nan, x), y, w), "targets"),
    (lambda x, y, w: (x, 2 * y, w), "sources"),
])
def test_bad_input_names_the_parameter(mutate, word):
    rng = np.random.default_rng(0)
    x = uniform_points(10, 3, rng)
    y = uniform_points(12, 3, rng)
    w = np.full(12, 1 / 12)
    with pytest.raises(ValueError, match=word):
        attention_field(*mutate(x, y, w), Attention(beta=1.0, d=3))


def _fallback_is_needed(x, y, model):
    """True if for every target all shifted exponents are below log(1e-200), i.e. the
    bound-shifted sum underflows and the kernel must take the exact-maximum branch."""
    q = model.beta * x @ model.A
    bound = np.linalg.norm(q, axis=1) * np.linalg.norm(y, axis=1).max()
    return bool(np.all((q @ y.T).max(axis=1) - bound < np.log(1e-200)))


def test_gemm_path_beta_500_fallback():
    """Large d (BLAS path): targets opposite to every source need the exact-maximum branch."""
    rng = np.random.default_rng(4)
    d = 32
    e1 = np.eye(d)[0]
    y = e1 + 0.05 * rng.standard_normal((200, d))
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    x = -e1 + 0.05 * rng.standard_normal((40, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    model = Attention(beta=500.0, d=d)
    assert _fallback_is_needed(x, y, model)
    w = np.full(200, 1 / 200)
    got = attention_field(x, y, w, model)
    ref = numpy_field(x, y, w, model)
    assert np.isfinite(got).all()
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("normalized", [True, False])
def test_harmonic_method_matches_direct_on_circle_and_sphere(d, normalized):
    """method="harmonic": Fourier modes on S^1, spherical harmonics on S^2, for
    Q^T K = c R; both truncate below round-off, so they agree with the direct sum to the
    round-off bound of their module docstrings (1e-12 relative at beta c = 2)."""
    rng = np.random.default_rng(d)
    R = np.linalg.qr(rng.standard_normal((d, d)))[0]
    if np.linalg.det(R) < 0 and d == 2:
        R[:, 0] *= -1  # a rotation on S^1 (the Fourier path needs A = c R(alpha))
    model = Attention(beta=2.0, d=d, Q=np.eye(d), K=0.8 * R, V=rng.standard_normal((d, d)),
                      normalized=normalized)
    x = uniform_points(300, d, rng)
    y = uniform_points(500, d, rng)
    w = rng.random(500)
    ref = attention_field(x, y, w, model, method="direct")
    got = attention_field(x, y, w, model, method="harmonic")
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()


def test_field_methods_are_checked():
    x = uniform_points(10, 3, np.random.default_rng(0))
    w = np.full(10, 0.1)
    with pytest.raises(ValueError, match="method"):
        attention_field(x, x, w, Attention(d=3), method="fast")
    with pytest.raises(ValueError, match="degree"):  # S^2: any A, up to MAX_DEGREE
        attention_field(x, x, w, Attention(beta=40.0, d=3), method="harmonic")
    x2 = uniform_points(10, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="rotation"):
        attention_field(x2, x2, w, random_model(2, seed=1), method="harmonic")
    with pytest.raises(ValueError, match="d = 2 and 3"):
        x4 = uniform_points(10, 4, np.random.default_rng(0))
        attention_field(x4, x4, w, Attention(d=4), method="harmonic")


def test_unchecked_call_accepts_runge_kutta_stage_points():
    """check=False: points off the sphere (RK stages) are used as given."""
    rng = np.random.default_rng(3)
    x = uniform_points(50, 3, rng)
    stage = x * 1.01
    w = np.full(50, 1 / 50)
    with pytest.raises(ValueError, match="unit sphere"):
        attention_field(stage, stage, w, Attention(d=3))
    out = attention_field(stage, stage, w, Attention(d=3), check=False)
    np.testing.assert_allclose(out, numpy_field(stage, stage, w, Attention(d=3)), rtol=1e-12,
                               atol=1e-14)


def test_docstring_examples_run():
    import doctest

    import continuum.kernels

    result = doctest.testmod(continuum.kernels)
    assert result.attempted > 0 and result.failed == 0
