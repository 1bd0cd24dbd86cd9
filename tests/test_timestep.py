"""The one marching loop (continuum.timestep.march) that FV and DG share."""

import numpy as np
import pytest

from continuum.timestep import march


def test_march_lands_on_saved_times_and_integrates_exactly():
    """x' = 1 with forward Euler is exact: the saved values are the saved times."""
    times = np.array([0.0, 0.3, 0.35, 1.0])
    saved = {}

    def propose(x):
        return 0.1, None

    def step(x, dt, _):
        return x + dt, True

    final, counts = march(0.0, times, 1.0, propose, step, lambda k, x: saved.update({k: x}),
                          progress=False)
    np.testing.assert_allclose([saved[k] for k in range(4)], times, atol=1e-14)
    assert final == pytest.approx(1.0)
    # ceil(0.3 / 0.1) + ceil(0.05 / 0.1) + ceil(0.65 / 0.1) steps: the last of each is shortened
    assert counts == {"steps": 3 + 1 + 7, "step_halvings": 0, "saved": 4}


def test_march_halves_a_failing_step_and_stops_a_hopeless_one():
    calls = []

    def step(x, dt, _):  # accepted only for dt <= 0.3
        calls.append(dt)
        return x + dt, dt <= 0.3

    _, counts = march(0.0, [0.0, 1.0], 1.0, lambda x: (1.0, None), step, lambda k, x: None,
                      progress=False)
    assert calls[:3] == [1.0, 0.5, 0.25] and counts["step_halvings"] >= 2

    with pytest.raises(RuntimeError, match="halved below"):
        march(0.0, [0.0, 1.0], 1.0, lambda x: (1.0, None), lambda x, dt, _: (x, False),
              lambda k, x: None, progress=False, label="never ok")


@pytest.mark.parametrize("limit", [0.0, -1.0, float("nan")])
def test_march_refuses_a_step_limit_that_never_advances(limit):
    with pytest.raises(RuntimeError, match="step limit"):
        march(0.0, [0.0, 1.0], 1.0, lambda x: (limit, None), lambda x, dt, _: (x + dt, True),
              lambda k, x: None, progress=False, label="bad limit")


@pytest.mark.parametrize("options, word", [({"max_dt": 0.0}, "max_dt"),
                                           ({"max_dt": -1e-3}, "max_dt"),
                                           ({"max_dt": "0.1"}, "max_dt"), ({"cfl": "0.3"}, "cfl")])
def test_fem_refuses_bad_step_options_before_work(options, word):
    from continuum import Attention, solve

    kind = TypeError if isinstance(next(iter(options.values())), str) else ValueError
    with pytest.raises(kind, match=word):
        solve(Attention(beta=1.0, d=3), lambda p: np.full(len(p), 1 / (4 * np.pi)), 1.0,
              method="fem", resolution=2, **options)
