import numpy as np
import pytest

from continuum import Attention, lora_update
from continuum.model import lora_factors


def test_defaults_are_identity_and_immutable():
    m = Attention(beta=2.0, d=3)
    for name in ("Q", "K", "V", "A"):
        np.testing.assert_array_equal(getattr(m, name), np.eye(3))
    assert m.normalized and m.name == "SA"
    with pytest.raises(ValueError):
        m.V[0, 0] = 5.0  # read-only array
    with pytest.raises(AttributeError):
        m.beta = 3.0


def test_inner_product_uses_QtK():
    rng = np.random.default_rng(0)
    Q, K = rng.standard_normal((2, 4, 4))
    m = Attention(beta=1.0, d=4, Q=Q, K=K)
    x, y = rng.standard_normal((2, 4))
    assert np.isclose((Q @ x) @ (K @ y), x @ m.A @ y, rtol=1e-14)


@pytest.mark.parametrize("kwargs, word", [
    (dict(beta=-0.1), "beta"),
    (dict(beta=float("nan")), "beta"),
    (dict(d=1), "d"),
    (dict(d=3, V=np.eye(2)), "V"),
    (dict(d=3, Q=np.ones((3, 4))), "Q"),
    (dict(d=3, K=np.diag([1.0, np.inf, 1.0])), "K"),
    (dict(d=2, V=np.array([[1.0, np.nan], [0.0, 1.0]])), "V"),
    (dict(normalized="yes"), "normalized"),
])
def test_bad_parameters_name_the_parameter(kwargs, word):
    with pytest.raises((ValueError, TypeError), match=word):
        Attention(**kwargs)


def test_perturbed_adds_updates():
    m = Attention(beta=1.0, d=3, V=np.diag([1.0, 0.5, 0.2]), normalized=False)
    delta = lora_update(d=3, rank=1, norm=0.2, target="V", seed=0)
    t = m.perturbed(V=delta)
    np.testing.assert_allclose(t.V, m.V + delta, rtol=0, atol=0)
    np.testing.assert_array_equal(t.Q, m.Q)
    assert t.beta == m.beta and t.normalized == m.normalized
    q = m.perturbed(Q=delta)
    np.testing.assert_allclose(q.A, (np.eye(3) + delta).T, atol=1e-15)
    with pytest.raises(ValueError, match="V update"):
        m.perturbed(V=np.eye(2))


@pytest.mark.parametrize("d, rank", [(2, 1), (3, 1), (3, 2), (16, 4)])
def test_lora_update_rank_and_norm(d, rank):
    delta = lora_update(d=d, rank=rank, norm=0.37, target="V", seed=1)
    assert delta.shape == (d, d)
    assert np.isclose(np.linalg.norm(delta, 2), 0.37, rtol=1e-12)
    assert np.linalg.matrix_rank(delta) == rank
    np.testing.assert_array_equal(delta, lora_update(d=d, rank=rank, norm=0.37, seed=1))
    assert not np.allclose(delta, lora_update(d=d, rank=rank, norm=0.37, seed=2))


def test_lora_peft_form():
    B, A, scale = lora_factors(4, 2, None, alpha=8.0, seed=3)
    assert B.shape == (4, 2) and A.shape == (2, 4) and scale == 4.0
    np.testing.assert_allclose(lora_update(4, 2, alpha=8.0, seed=3), 4.0 * B @ A)


@pytest.mark.parametrize("kwargs, word", [
    (dict(d=3, rank=4, norm=0.1), "rank"),
    (dict(d=3, rank=0, norm=0.1), "rank"),
    (dict(d=3, rank=1, norm=-1.0), "norm"),
    (dict(d=3, rank=1, norm=None), "norm"),
    (dict(d=3, rank=1, norm=0.1, target="W"), "target"),
    (dict(d=3, rank=1, norm=0.1, alpha=2.0), "alpha"),
])
def test_lora_bad_input(kwargs, word):
    with pytest.raises(ValueError, match=word):
        lora_update(**kwargs)
