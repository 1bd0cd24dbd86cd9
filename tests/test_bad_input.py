"""Bad input and hostile regimes through the API (issue 15, classes 5, 6, 7 and 9): every case
raises a clear error of the stated type naming the parameter before any work, stops a
collapsed run with the reason, or returns the right answer instead of a silently wrong one.

Hangs are tested two ways: checks that must fire before the loop run in-process (they raise
before any step), and the runs whose step collapses after a few steps run in a subprocess with
a timeout, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import copy
import logging
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from continuum import Attention, Measure, lora_update, solve
from continuum.geometry import uniform_points
from continuum.kernels import attention_field
from continuum.timestep import StepCollapseError, field_scale
from particles import sample, simulate


def uniform_s1(p):
    return np.full(len(p), 1 / (2 * np.pi))


def uniform_s2(p):
    return np.full(len(p), 1 / (4 * np.pi))


def tokens(n=20, d=3, seed=0):
    return uniform_points(n, d, np.random.default_rng(seed))


# ---------------------------------------------------------------- class 5: hangs and resources

@pytest.mark.parametrize("max_dt", [0.0, -1e-3, float("nan"), float("inf")])
def test_fem_max_dt_is_refused_before_the_loop(max_dt):
    with pytest.raises(ValueError, match="max_dt"):
        solve(Attention(beta=1.0, d=3), uniform_s2, 1.0, method="fem", resolution=1,
              max_dt=max_dt)


@pytest.mark.parametrize("method, options, word", [
    ("fv", {"max_steps": 0}, "max_steps"),
    ("spectral", {"max_steps": 2.5}, "max_steps"),
    ("fv", {"cfl": 0.0}, "cfl"),
    ("spectral", {"rtol": -1e-8}, "rtol"),
    ("spectral", {"atol": float("nan")}, "atol"),
    ("fv", {"cluster_fraction": 2.0}, "cluster_fraction"),
])
def test_step_options_are_range_checked(method, options, word):
    kind = TypeError if isinstance(next(iter(options.values())), float) and word == \
        "max_steps" else ValueError
    with pytest.raises(kind, match=word):
        solve(Attention(beta=1.0, d=2), uniform_s1, 1.0, method=method, resolution=16,
              **options)


def test_fv_usa_large_beta_stops_at_once_naming_the_usa_scale():
    # CFL step h / max|v| with |v| ~ e^20: the remaining time needs ~5e6 steps > max_steps,
    # refused at the first step proposal (before any step is taken)
    model = Attention(beta=20.0, d=2, normalized=False)
    with pytest.raises(StepCollapseError, match="max_steps") as err:
        solve(model, lambda p: uniform_s1(p) * (1 + 0.1 * p[:, 0]), 1.0, method="fv",
              resolution=64, progress=False)
    assert "USA" in str(err.value) and "e^20" in str(err.value)
    assert "(1 taken)" in str(err.value)


def test_particles_usa_large_beta_refused_before_work():
    # default dt = 0.1 / (||V|| e^a (1 + 2a)) ~ 5e-12 at a = 20: 2e11 steps, refused up front
    with pytest.raises(StepCollapseError, match="max_steps") as err:
        simulate(Attention(beta=20.0, d=3, normalized=False), tokens(), 1.0)
    assert "e^20" in str(err.value) and "dt" in str(err.value)


def test_collapsing_spectral_runs_stop_with_the_reason_within_a_timeout():
    """SA beta = 50 from a concentrated start and USA beta = 20: before the fix DOP853 shrank
    its step to 1e-11 and crawled on (or overflowed in a trial step); now each stops within
    20 steps of the collapse with an error naming the reason."""
    script = textwrap.dedent("""
        import numpy as np
        from continuum import Attention, solve
        from continuum.geometry import von_mises_density
        from continuum.timestep import StepCollapseError
        cases = {
            "sa50": (Attention(beta=50.0, d=2), lambda p: von_mises_density(p, [1, 0], 20.0)),
            "usa20": (Attention(beta=20.0, d=2, normalized=False),
                      lambda p: (1 + 0.1 * p[:, 0]) / (2 * np.pi)),
        }
        for name, (model, rho0) in cases.items():
            try:
                solve(model, rho0, 5.0, method="spectral", resolution=64, progress=False,
                      on_unresolved="warn")  # kept on past its tail: the step collapses
                print(name, "NO ERROR")
            except StepCollapseError as err:
                print(name, "|", str(err).replace(chr(10), " "))
    """)
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" | ", 1) for line in proc.stdout.splitlines() if " | " in line)
    assert set(lines) == {"sa50", "usa20"}, proc.stdout
    assert "max_steps" in lines["sa50"] and "resolution" in lines["sa50"]
    assert "spectral tail" in lines["sa50"].lower()
    assert "USA" in lines["usa20"] and "e^20" in lines["usa20"]


def test_sizes_beyond_memory_are_refused_naming_the_size():
    with pytest.raises(MemoryError, match="resolution") as err:
        solve(Attention(d=2), uniform_s1, 1.0, method="spectral", resolution=2**40)
    assert "GiB" in str(err.value)
    with pytest.raises(MemoryError, match="resolution"):
        solve(Attention(d=2), uniform_s1, 1.0, method="fv", resolution=2**40)
    with pytest.raises(MemoryError, match="n"):
        sample(None, n=10**13, d=3)
    # 10^4 tokens x 2e6 saved times x d = 3: 480 GB of positions
    with pytest.raises(MemoryError, match="x0 and times"):
        simulate(Attention(d=3), tokens(10_000), 1.0, times=np.linspace(0, 1, 2_000_000))


# ------------------------------------------------------- class 6: silent wrong answers

def _field_gap(model, tuned, n_measures=5, seed=0):
    """max |X_tuned[mu](x) - X_base[mu](x)| over random measures and their atoms."""
    rng = np.random.default_rng(seed)
    gap = 0.0
    for _ in range(n_measures):
        x = uniform_points(40, model.d, rng)
        w = rng.dirichlet(np.full(40, 0.3))
        gap = max(gap, np.abs(attention_field(x, x, w, tuned) - attention_field(x, x, w, model)
                              ).max())
    return gap


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("target", ["Q", "K"])
def test_q_or_k_perturbation_has_a_positive_forcing_that_bounds_the_field_change(
        normalized, target):
    from forgetting.bounds import gronwall_bound, perturbation_log_forcing

    model = Attention(beta=1.5, d=3, V=np.diag([1.0, 0.7, 0.4]), normalized=normalized)
    tuned = model.perturbed(**{target: lora_update(3, 1, 0.3, target=target, seed=1)})
    eps = math.exp(perturbation_log_forcing(model, tuned))
    gap = _field_gap(model, tuned)
    assert 0 < gap <= eps  # the derived forcing is an upper bound, and it is not 0
    assert gronwall_bound(model, tuned, [0.0])[0] == 0
    assert gronwall_bound(model, tuned, [0.5])[0] > 0


def test_gronwall_curve_of_a_q_run_bounds_the_measured_deviation():
    """Before the fix a Q perturbation got a bound of 0 while W_1 was 0.1. The bound is on
    W_1 with chordal cost; geodesic <= (pi/2) chordal."""
    from forgetting import forgetting_run

    model = Attention(beta=1.0, d=3)
    tuned = model.perturbed(Q=lora_update(3, 1, 0.5, target="Q", seed=2))
    run = forgetting_run(model, tuned, "particles", T=1.0, times=np.linspace(0, 1, 5), n=40,
                         seed=3)
    assert run.deviation_w1[-1] > 0 and run.delta_norm == pytest.approx(0.5)
    assert np.all(run.deviation_w1 <= np.pi / 2 * run.gronwall + 1e-12)
    assert np.all(run.gronwall[1:] > 0)


def test_interaction_energy_is_finite_at_large_beta_in_log_space():
    """Two orthogonal atoms of mass 1/2, Q = K = I: int int e^{beta <x,y>} = (e^beta + 1)/2,
    E = (e^beta - 1)/(4 beta). At beta = 712, e^beta overflows but E ~ 1e305 does not; the
    log-space value carries round-off ~ 704 * 2^-52 relative, hence rtol 1e-12."""
    from continuum.solution import finish_solution

    beta = 712.0
    model = Attention(beta=beta, d=3)
    mu = Measure(np.eye(3)[:2], [0.5, 0.5])
    expected = math.exp(beta - math.log(4 * beta))  # e^-712 below round-off of (e^b - 1)
    assert mu.interaction_energy(model) == pytest.approx(expected, rel=1e-12)
    sol = finish_solution(model, np.zeros(1), np.eye(3)[:2], np.ones(2),
                          np.array([[0.5, 0.5]]), {})
    log_mean = beta + math.log1p(math.exp(-beta)) - math.log(2)
    assert sol.diagnostics["log_kernel_mean"][0] == pytest.approx(log_mean, rel=1e-14)
    assert sol.diagnostics["energy"][0] == pytest.approx(expected, rel=1e-12)
    # beyond float64 the energy is inf, but its log stays finite
    big = finish_solution(Attention(beta=900.0, d=3), np.zeros(1), np.eye(3)[:2], np.ones(2),
                          np.array([[0.5, 0.5]]), {})
    assert np.isinf(big.diagnostics["energy"][0])
    assert big.diagnostics["log_kernel_mean"][0] == pytest.approx(900 - math.log(2), rel=1e-14)


def test_usa_default_step_and_rk4_check_include_the_scale_e_beta():
    """USA beta = 7: the field carries e^7 ~ 1100; the old step 0.1 / (1 + 14) left RK4's
    stability interval and blew up ('exceeds the float64 range'). Now the default step
    includes e^a and runs; a user dt outside the interval is refused naming dt and e^a."""
    model = Attention(beta=7.0, d=3, normalized=False)
    assert field_scale(model) == pytest.approx(15 * math.exp(7.0), rel=1e-12)
    traj = simulate(model, tokens(30), 0.01, times=[0.0, 0.01], progress=False)
    np.testing.assert_allclose(np.linalg.norm(traj.points, axis=2), 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="dt") as err:
        simulate(model, tokens(30), 0.01, dt=0.005)
    assert "e^a" in str(err.value)


@pytest.mark.parametrize("call, word", [
    (lambda: solve(Attention(beta=1.0, d=3), uniform_s2, 0.1, method="fem", resolution=1,
                   limiter="no"), "limiter"),
    (lambda: solve(Attention(d=2), uniform_s1, 0.1, resolution=16, progress="yes"), "progress"),
    (lambda: Attention(beta="3", d=2), "beta"),
    (lambda: Attention(beta=True, d=2), "beta"),
    (lambda: Attention(d=2, normalized="yes"), "normalized"),
    (lambda: Attention(d=2, Q=[[True, False], [False, True]]), "Q"),
    (lambda: solve(Attention(d=2), uniform_s1, "1.0", resolution=16), "T"),
    (lambda: solve(Attention(d=2), uniform_s1, 1.0, resolution=16, times=["0", "1"]), "times"),
    (lambda: solve(Attention(d=2), uniform_s1, 1.0, resolution=16.0), "resolution"),
    (lambda: simulate(Attention(d=3), tokens(), 1.0, dt="0.1"), "dt"),
    (lambda: solve("model", uniform_s1, 1.0), "model"),
])
def test_wrong_types_are_refused_not_converted(call, word):
    with pytest.raises(TypeError, match=word):
        call()


def test_resumed_dop853_run_reports_every_function_evaluation(tmp_path, monkeypatch):
    """Crash after the 3rd saved time, resume: info['nfev'] equals the evaluations made by
    both processes together (before the fix the resumed count subtracted the first solver's
    total from the second's)."""
    import particles.integrate as integrate

    calls = {"n": 0}
    original_field, original_save = integrate.attention_field, integrate._save_checkpoint

    def counting_field(*args, **kwargs):
        calls["n"] += 1
        return original_field(*args, **kwargs)

    class Crash(Exception):
        pass

    def crashing_save(path, run_key, k_done, *args):
        original_save(path, run_key, k_done, *args)
        if k_done == 3:
            raise Crash

    monkeypatch.setattr(integrate, "attention_field", counting_field)
    monkeypatch.setattr(integrate, "_save_checkpoint", crashing_save)
    model, x0, times = Attention(beta=1.0, d=3), tokens(15), np.linspace(0, 2.0, 6)
    path = tmp_path / "run.npz"
    with pytest.raises(Crash):
        simulate(model, x0, 2.0, times=times, method="dop853", checkpoint=path)
    monkeypatch.setattr(integrate, "_save_checkpoint", original_save)
    resumed = simulate(model, x0, 2.0, times=times, method="dop853", checkpoint=path)
    assert resumed.info["resumed_from_index"] == 3
    assert resumed.info["nfev"] == calls["n"]


# ------------------------------------------------ class 7: crashes after the work is done

def test_lipschitz_constants_beyond_float64_are_inf_not_overflow():
    from forgetting.bounds import (
        deviation_time_lower_bound,
        gronwall_bound,
        lipschitz_constants,
    )

    model = Attention(beta=400.0, d=3)  # SA, a = 400: e^{2a} > float64 max
    c = lipschitz_constants(model)
    assert c["L"] == math.inf and c["L_mu"] == math.inf
    assert c["log_L"] == pytest.approx(800 + math.log(801), rel=1e-14)  # L_mu dominates
    bound = gronwall_bound(model, 0.1, [0.0, 1.0])
    assert bound[0] == 0 and bound[1] == math.inf
    assert deviation_time_lower_bound(model, 0.1, 0.05) == 0.0
    usa = lipschitz_constants(Attention(beta=800.0, d=3, normalized=False))
    assert usa["forcing"] == math.inf and usa["log_forcing"] == 800.0
    t = deviation_time_lower_bound(Attention(beta=800.0, d=3, normalized=False), 0.1, 0.05)
    assert t == 0.0


def test_forgetting_run_at_sa_beta_400_finishes_with_its_bound():
    from forgetting import forgetting_run

    model = Attention(beta=400.0, d=3)
    tuned = model.perturbed(V=lora_update(3, 1, 0.1, seed=0))
    run = forgetting_run(model, tuned, "particles", T=0.02, times=[0.0, 0.02], n=10, seed=0)
    assert run.gronwall[0] == 0 and run.gronwall[1] == math.inf
    assert run.info["lipschitz"]["L"] == math.inf


def _single_value_study():
    from forgetting.config import DEFAULT_STUDY, validate_config

    raw = copy.deepcopy(DEFAULT_STUDY)
    raw["sweep"]["values"] = [0.3]
    return validate_config(raw)


def test_a_single_sweep_value_crossing_delta_draws_its_figures(tmp_path):
    from forgetting.report import figures

    cfg = _single_value_study()
    times = np.linspace(0, cfg["time"]["T"], 5)
    D = np.linspace(0, 2 * cfg["sweep"]["delta"], 5)  # crosses delta
    by_backend = {"fv": [{"times": times, "deviation_w2": D, "t_dev": 10.0}]}
    files = figures(cfg, [0.3], by_backend, tmp_path)
    assert set(files) == {"phase_fv", "deviation_T"}
    assert all((tmp_path / f"{name}.png").exists() for name in files)


def test_a_failing_figure_is_logged_and_never_raises(tmp_path, monkeypatch, caplog):
    import forgetting.report as report

    def broken(*args, **kwargs):
        raise ValueError("contour needs a 2 x 2 grid")

    monkeypatch.setattr(report, "_phase", broken)
    cfg = _single_value_study()
    times = np.linspace(0, cfg["time"]["T"], 5)
    by_backend = {"fv": [{"times": times, "deviation_w2": times * 0, "t_dev": np.inf}]}
    with caplog.at_level(logging.WARNING, logger="forgetting.report"):
        files = report.figures(cfg, [0.3], by_backend, tmp_path)
    assert set(files) == {"deviation_T"}
    assert "phase_fv" in caplog.text and "contour" in caplog.text


# ------------------------------------------------------- class 9: errors that name nothing

@pytest.mark.parametrize("call, kind, word", [
    (lambda: Attention(d=2, V=[[1.0, 2.0], [3.0]]), ValueError, "V"),
    (lambda: Attention(d=2, V=[["a", "b"], ["c", "d"]]), TypeError, "V"),
    (lambda: Attention(d=2, K=[[1 + 1j, 0], [0, 1]]), TypeError, "K"),
    (lambda: Attention(d=2).perturbed(Q="abc"), TypeError, "Q update"),
    (lambda: Measure([["1", "0"]]), TypeError, "points"),
    (lambda: Measure([[1.0, 0.0]], weights=["1"]), TypeError, "weights"),
])
def test_bad_arrays_name_the_parameter(call, kind, word):
    with pytest.raises(kind, match=word):
        call()


@pytest.mark.parametrize("kwargs, kind, word", [
    ({"d": 3, "rank": 1, "norm": "0.2"}, TypeError, "norm"),
    ({"d": 3, "rank": 1, "norm": 0.2, "seed": "x"}, TypeError, "seed"),
    ({"d": 3, "rank": "1", "norm": 0.2}, TypeError, "rank"),
    ({"d": "3", "rank": 1, "norm": 0.2}, TypeError, "d"),
    ({"d": 3, "rank": 1, "norm": 0.2, "target": 1}, ValueError, "target"),
    ({"d": 3, "rank": 1, "alpha": "2"}, TypeError, "alpha"),
    ({"d": 3, "rank": 1, "norm": float("nan")}, ValueError, "norm"),
])
def test_lora_update_names_bad_arguments(kwargs, kind, word):
    with pytest.raises(kind, match=word):
        lora_update(**kwargs)


def test_simulate_with_zero_tokens_names_x0():
    with pytest.raises(ValueError, match="x0"):
        simulate(Attention(d=3), np.zeros((0, 3)), 1.0)
    with pytest.raises(ValueError, match="x0"):
        simulate(Attention(d=3), np.array([1.0, 0.0, 0.0]), 1.0)


def test_uncreatable_output_paths_are_refused_before_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="checkpoint"):
        simulate(Attention(d=3), tokens(), 1.0, checkpoint=blocker / "sub" / "run.npz")
    with pytest.raises(ValueError, match="output"):
        solve(Attention(d=3), uniform_s2, 1.0, method="fem", resolution=1,
              output=blocker / "vtx")
    # a missing folder that can be made is made
    traj = simulate(Attention(d=3), tokens(), 0.1, times=[0.0, 0.1],
                    checkpoint=tmp_path / "new" / "run.npz")
    assert (tmp_path / "new" / "run.npz").exists() and len(traj) == 2


def test_validation_only_without_names_and_bad_out_are_refused(tmp_path, capsys):
    from validation.runner import main, run

    with pytest.raises(SystemExit) as exit_:
        main(["--out", str(tmp_path), "--only"])
    assert exit_.value.code == 2 and "--only" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_:
        main(["--out", str(blocker / "out"), "--only", "kernel_reference"])
    assert exit_.value.code == 2 and "--out" in capsys.readouterr().err
    with pytest.raises(ValueError, match="only"):
        run(tmp_path, quick=True, only=[])
    with pytest.raises(ValueError, match="only"):
        run(tmp_path, quick=True, only=["no_such_case"])


def test_distances_and_deviation_times_name_bad_arguments():
    from continuum.wasserstein import wasserstein_circle, wasserstein_reduced, wasserstein_sphere
    from forgetting.runs import forgetting_run, time_to_deviation

    mu = Measure(tokens(5))
    with pytest.raises(TypeError, match="p"):
        wasserstein_sphere(mu, mu, p="2")
    with pytest.raises(ValueError, match="p"):
        wasserstein_circle(Measure(tokens(5, d=2)), Measure(tokens(5, d=2)), p=0.5)
    with pytest.raises(TypeError, match="nu"):
        wasserstein_sphere(mu, tokens(5))
    with pytest.raises(TypeError, match="max_support"):
        wasserstein_reduced(mu, Measure(tokens(5, seed=1)), max_support=10.5)
    with pytest.raises(TypeError, match="delta"):
        time_to_deviation([0.0, 1.0], [0.0, 0.2], "0.1")
    with pytest.raises(ValueError, match="D"):
        time_to_deviation([0.0, 1.0], [0.0, 0.2, 0.3], 0.1)
    with pytest.raises(ValueError, match="backend"):
        forgetting_run(Attention(d=3), Attention(d=3), backend="particle")
    with pytest.raises(TypeError, match="tuned"):
        forgetting_run(Attention(d=3), np.eye(3))


def test_attention_field_names_its_bad_options():
    x = tokens(4)
    w = np.full(4, 0.25)
    with pytest.raises(TypeError, match="model"):
        attention_field(x, x, w, {"beta": 1.0})
    with pytest.raises(TypeError, match="check"):
        attention_field(x, x, w, Attention(d=3), check="no")
    with pytest.raises(ValueError, match="method"):
        attention_field(x, x, w, Attention(d=3), method="fast")
    with pytest.raises(TypeError, match="targets"):
        attention_field(x.astype(str), x, w, Attention(d=3))


def test_horizons_beyond_the_step_budget_are_refused_at_once():
    # T = 1e9 at the CFL step (~0.01) or RK4's default step: 1e11 steps, not years of work
    with pytest.raises(StepCollapseError, match="max_steps"):
        solve(Attention(d=2), uniform_s1, 1e9, method="fv", resolution=16, progress=False)
    with pytest.raises(StepCollapseError, match="max_steps"):
        simulate(Attention(d=3), tokens(), 1e9)
    with pytest.raises(StepCollapseError, match="max_steps = 10"):
        simulate(Attention(d=3), tokens(), 1.0, dt=0.01, max_steps=10)


def test_exact_transport_too_large_for_memory_is_refused():
    from continuum.wasserstein import wasserstein_sphere

    # two measures of 1e6 atoms: a 1e6 x 1e6 cost matrix is 16 TB (points: 2 x 24 MB)
    big = Measure(np.tile([[0.0, 0.0, 1.0]], (1_000_000, 1)))
    with pytest.raises(MemoryError, match="cost matrix"):
        wasserstein_sphere(big, big)


def test_seeds_accept_numpy_seeds_and_refuse_the_rest():
    assert sample(None, n=3, d=3, seed=[7, 100, 0]).shape == (3, 3)  # SeedSequence entropy
    with pytest.raises(TypeError, match="seed"):
        sample(None, n=3, d=3, seed=[1.5, 2.0])
    with pytest.raises(TypeError, match="seed"):
        sample(None, n=3, d=3, seed=True)
