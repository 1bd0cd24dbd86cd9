import numpy as np
import pytest
from scipy.special import iv, spherical_in

from continuum.linear import uniform_growth_rate


def test_design_sample_values():
    # the design card (shared DESIGN.md, section 4), SA, beta = 1 (values given to 4 digits)
    for k, v in zip((1, 2, 3), (0.4464, 0.4289, 0.1576)):
        assert abs(uniform_growth_rate(k, 1.0, 2, True) - v) < 5e-5
    for l, v in zip((1, 2), (0.6261, 0.3654)):
        assert abs(uniform_growth_rate(l, 1.0, 3, True) - v) < 5e-5


@pytest.mark.parametrize("beta", [0.5, 1.0, 4.0, 9.0, 40.0])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_general_formula_reduces_to_circle_and_sphere_forms(beta, k):
    usa2 = k**2 * iv(k, beta) / beta
    sa2 = usa2 / iv(0, beta)
    usa3 = k * (k + 1) * spherical_in(k, beta) / beta
    sa3 = usa3 / spherical_in(0, beta)
    assert np.isclose(uniform_growth_rate(k, beta, 2, False), usa2, rtol=1e-12)
    assert np.isclose(uniform_growth_rate(k, beta, 2, True), sa2, rtol=1e-12)
    assert np.isclose(uniform_growth_rate(k, beta, 3, False), usa3, rtol=1e-12)
    assert np.isclose(uniform_growth_rate(k, beta, 3, True), sa3, rtol=1e-12)


@pytest.mark.parametrize("d", [2, 3, 5, 16])
def test_beta_to_zero_limits(d):
    for normalized in (True, False):
        assert uniform_growth_rate(1, 0.0, d, normalized) == (d - 1) / d
        assert np.isclose(uniform_growth_rate(1, 1e-6, d, normalized), (d - 1) / d, rtol=1e-5)
        assert uniform_growth_rate(2, 0.0, d, normalized) == 0.0
        assert uniform_growth_rate(2, 1e-6, d, normalized) < 1e-5
