import numpy as np
import pytest

import particles.integrate as integrate
from continuum import Attention
from continuum.geometry import uniform_points
from particles import simulate

MODEL = Attention(beta=2.0, d=3)
X0 = uniform_points(30, 3, np.random.default_rng(0))
TIMES = np.linspace(0.0, 2.0, 9)


def _crash_after(monkeypatch, calls):
    real = integrate.attention_field
    count = {"n": 0}

    def flaky(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(integrate, "attention_field", flaky)


@pytest.mark.parametrize("method, crash_after", [("rk4", 50), ("layers", 20)])
def test_resume_after_crash_is_bitwise_identical(tmp_path, monkeypatch, method, crash_after):
    dt = 0.05 if method == "layers" else None
    ref = simulate(MODEL, X0, 2.0, times=TIMES, method=method, dt=dt)
    path = tmp_path / "run.npz"
    with monkeypatch.context() as m:
        _crash_after(m, crash_after)
        with pytest.raises(KeyboardInterrupt):
            simulate(MODEL, X0, 2.0, times=TIMES, method=method, dt=dt, checkpoint=path)
    assert path.exists()
    resumed = simulate(MODEL, X0, 2.0, times=TIMES, method=method, dt=dt, checkpoint=path)
    assert 0 < resumed.info["resumed_from_index"] < len(TIMES)
    np.testing.assert_array_equal(resumed.points, ref.points)
    assert resumed.info["steps"] == ref.info["steps"]


def test_finished_checkpoint_returns_without_recomputing(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    first = simulate(MODEL, X0, 2.0, times=TIMES, checkpoint=path)
    monkeypatch.setattr(integrate, "attention_field", None)  # any evaluation would fail
    again = simulate(MODEL, X0, 2.0, times=TIMES, checkpoint=path)
    np.testing.assert_array_equal(again.points, first.points)
    assert again.info["resumed_from_index"] == len(TIMES)


def test_dop853_resume_within_tolerance(tmp_path, monkeypatch):
    kw = dict(times=TIMES, method="dop853", rtol=1e-11, atol=1e-13)
    ref = simulate(MODEL, X0, 2.0, **kw)
    path = tmp_path / "run.npz"
    with monkeypatch.context() as m:
        _crash_after(m, 60)
        with pytest.raises(KeyboardInterrupt):
            simulate(MODEL, X0, 2.0, checkpoint=path, **kw)
    resumed = simulate(MODEL, X0, 2.0, checkpoint=path, **kw)
    assert resumed.info["resumed_from_index"] > 0
    assert np.abs(resumed.points - ref.points).max() < 1e-8  # both within ~rtol of the truth


def test_checkpoint_of_another_run_is_refused(tmp_path):
    path = tmp_path / "run.npz"
    simulate(MODEL, X0, 2.0, times=TIMES, checkpoint=path)
    other = Attention(beta=2.5, d=3)
    with pytest.raises(ValueError, match="different run"):
        simulate(other, X0, 2.0, times=TIMES, checkpoint=path)
