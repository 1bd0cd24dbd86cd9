"""Under-resolution (issue 22): a run its solver knows to be under-resolved raises
``continuum.UnderResolved`` with on_unresolved="raise", or warns and keeps the flag."""

import numpy as np
import pytest

from continuum import Attention, UnderResolved, solve
from continuum.geometry import von_mises_density
from continuum.resolution import UnderResolvedWarning
from continuum.solve import check_initial


def _clustering_fv(**kw):
    # V = I, beta = 1, SA: a von Mises start collapses to a cluster narrower than a cell of
    # the 16-cell grid well before T = 20 (the FV solver's cell indicator)
    model = Attention(beta=1.0, d=2)
    rho0 = lambda p: von_mises_density(p, np.array([np.cos(0.3), np.sin(0.3)]), 1.0)  # noqa: E731
    return solve(model, rho0, 20.0, method="fv", resolution=16, times=np.linspace(0, 20, 5),
                 progress=False, **kw)


def test_under_resolved_raises_naming_resolution_and_time():
    with pytest.raises(UnderResolved, match="resolution 16") as err:
        _clustering_fv(on_unresolved="raise")
    assert err.value.method == "fv" and err.value.resolution == 16
    assert 0 < err.value.time <= 20 and err.value.solution is not None


def test_under_resolved_warn_keeps_the_flag():
    with pytest.warns(UnderResolvedWarning):
        sol = _clustering_fv(on_unresolved="warn")
    assert 0 < sol.info["under_resolved_from"] <= 20


def test_on_unresolved_is_checked():
    with pytest.raises(ValueError, match="on_unresolved"):
        _clustering_fv(on_unresolved="ignore")


@pytest.mark.parametrize("method, d, resolution", [("fv", 2, 16), ("spectral", 2, 16),
                                                   ("spectral", 3, 8)])
def test_check_initial_refuses_what_the_solver_refuses(method, d, resolution):
    with pytest.raises(ValueError, match="rho0"):
        check_initial(method, d, resolution, lambda p: np.full(len(p), 3.0))
    assert check_initial(method, d, resolution,
                         lambda p: np.full(len(p), 1 / (2 * np.pi if d == 2 else 4 * np.pi))) \
        == resolution
