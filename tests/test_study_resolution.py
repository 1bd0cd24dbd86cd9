"""Issue 22 (studies): a study never reports an under-resolved number unflagged.

Class 1: a continuum run its solver flags (continuum.UnderResolved, on_unresolved="warn") is
marked in table.md, the figures and study.nc, and the CLI exits 5 naming the point unless
[backend] allow_unresolved = true. Class 2: resolution = "auto" refines until D(t) and T_dev
settle and stores an error estimate that bounds the error of the accepted level; a refinement
that does not converge is flagged the same way. Class 3: the study's own checks (the initial
density on each backend's grid, n_times, the sweep values, the command line, every key's type)
stop the study before any run with one line naming the key."""

import copy
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from forgetting.config import DEFAULT_STUDY, REQUIRED, SCHEMA, ConfigError, validate_config
from forgetting.refinement import refinement_levels, settle_levels
from forgetting.report import MARK, figures, table
from forgetting.study import run_study
from meanfield.cli import main as cli
from tests.test_sweep_cluster import write_study

#: the issue's repro, small: S^2, SA beta = 1, V = I, von Mises start, the spectral solver at
#: its default band limit 32 (its tail passes 1e-6 at t = 2 of the saved times 0, 0.5, ...)
SPECTRAL_S2 = {
    "study": {"name": "s2-spectral"},
    "model": {"d": 3, "beta": 1.0},
    "backend": {"kinds": ["spectral", "particles"], "n": 60},
    "initial": {"kind": "von_mises"},
    "time": {"T": 3.0, "n_times": 7},
    "sweep": {"values": [0.0, 0.1]},
    "deviation": {"max_support": 300},  # D between the 2178 GL nodes: merged, bound stored
}


def write_toml(path, cfg):
    """``cfg`` as a TOML study file (its own study.output; None entries left out)."""
    cfg = {s: {k: v for k, v in keys.items() if v is not None} for s, keys in cfg.items()}
    return write_study(path, Path(cfg["study"]["output"]), base=cfg)


def spectral_study(tmp_path, **backend):
    cfg = copy.deepcopy(SPECTRAL_S2)
    cfg["study"]["output"] = str(tmp_path / "out")
    cfg["backend"].update(backend)
    return write_toml(tmp_path / "s2.toml", cfg)


# class 1: flagged points, marked everywhere, exit status 5

def test_under_resolved_spectral_study_exits_5_naming_the_point(tmp_path, capsys):
    study = spectral_study(tmp_path)
    assert cli(["run", str(study)]) == 5
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.startswith("meanfield:")]
    assert len(err) == 1
    assert "spectral at norm = 0.1 from t = 2" in err[0] and "allow_unresolved" in err[0]
    assert "backend.resolution" in err[0] and '"auto"' in err[0]
    out = tmp_path / "out"
    text = (out / "table.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 0.1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].endswith(MARK.strip()) and not cells[2].endswith(MARK.strip())
    assert "spectral, norm = 0.1: from t = 2" in text
    ds = xr.open_dataset(out / "study.nc", engine="h5netcdf")
    flag = ds["flagged_from_spectral"]
    assert flag.attrs["units"] and "not resolved" in flag.attrs["description"]
    # ||Delta|| = 0 compares a run with itself (D = 0 exactly): not flagged; eps = 0.1 from
    # the solver's time
    assert np.isinf(flag.values[0]) and flag.values[1] == 2.0
    assert ds["under_resolved_from_spectral"].values[1] == 2.0
    assert np.all(np.isinf(ds["flagged_from_particles"].values))
    assert "spectral" in str(ds["flag_reason_spectral"].values[1])
    ds.close()
    for name in ("phase_spectral", "phase_particles", "deviation_T"):
        assert (out / f"{name}.png").stat().st_size > 0
    # allowed: exit 0 from the checkpoints (allow_unresolved changes no result), still flagged
    spectral_study(tmp_path, allow_unresolved=True)
    stamp = sorted(p.stat().st_mtime_ns for p in (out / "runs").glob("*.npz"))
    assert cli(["run", str(study)]) == 0
    assert sorted(p.stat().st_mtime_ns for p in (out / "runs").glob("*.npz")) == stamp
    assert MARK.strip() in (out / "table.md").read_text()
    assert "allow_unresolved = true" in (out / "table.md").read_text()


def _result(times, D, t_dev, flagged_from=math.inf, reason=""):
    return {"times": np.asarray(times, float), "deviation_w2": np.asarray(D, float),
            "t_dev": np.array(t_dev), "flagged_from": flagged_from, "flag_reason": reason,
            "error_w2": np.full(len(times), np.nan), "error_t_dev": np.array(np.nan)}


def _cfg(values, **backend):
    cfg = copy.deepcopy(DEFAULT_STUDY)
    cfg["sweep"]["values"] = values
    cfg["time"].update(T=2.0, n_times=3)
    cfg["backend"].update(backend)
    return validate_config(cfg)


def test_table_marks_exactly_the_values_that_depend_on_flagged_times():
    """D(T) of a flagged point is marked; its T_dev only when it was not reached before the
    flag time; the note names backend, value, time and reason."""
    cfg = _cfg([0.1, 0.3, 0.4])
    times = [0.0, 1.0, 2.0]
    fv = [_result(times, [0, 0.1, 0.2], math.inf, 1.0, "cluster below a cell"),
          _result(times, [0, 0.4, 0.8], 0.75, 1.0, "cluster below a cell"),  # before t = 1
          _result(times, [0, 0.4, 0.8], 0.75)]
    particles = [_result(times, [0, 0.1, 0.2], math.inf) for _ in range(3)]
    text = table(cfg, [0.1, 0.3, 0.4], {"fv": fv, "particles": particles})
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| 0.")}
    mark = MARK.strip()
    assert rows["0.1"][1].endswith(mark) and rows["0.1"][3].endswith(mark)  # inf: unresolved
    assert rows["0.3"][1].endswith(mark) and not rows["0.3"][3].endswith(mark)
    assert not any(c.endswith(mark) for c in rows["0.4"])
    assert not any(c.endswith(mark) for row in rows.values() for c in (row[2], row[4]))
    assert "fv, norm = 0.1: from t = 1: cluster below a cell" in text
    assert "fv, norm = 0.4" not in text and "particles column cross-checks" in text


def test_figures_hatch_flagged_cells_and_sort_unsorted_values(tmp_path):
    """Given unsorted values (as a caller of report.figures may), the figures are drawn on
    the sorted axis; the flagged cells are hatched (a patch per flagged point)."""
    import matplotlib
    matplotlib.use("Agg")
    from forgetting import report

    cfg = _cfg([0.1, 0.2, 0.3])
    times = [0.0, 1.0, 2.0]
    rs = [_result(times, [0, 0.3, 0.6], 1.0), _result(times, [0, 0.1, 0.2], math.inf, 1.0),
          _result(times, [0, 0.2, 0.4], 1.5)]
    drawn = []
    real = report._phase

    def spy(ax, fig, cfg, values, k, rs):
        real(ax, fig, cfg, values, k, rs)
        drawn.append((list(values), len(ax.patches), ax.get_legend().get_texts()))
    report._phase = spy
    try:
        files = figures(cfg, [0.3, 0.1, 0.2], {"fv": rs}, tmp_path)
    finally:
        report._phase = real
    assert set(files) == {"phase_fv", "deviation_T"}
    values, patches, legend = drawn[0]
    assert values == [0.1, 0.2, 0.3] and patches == 1  # only the value 0.1 (given second)
    assert any("under-resolved" in t.get_text() for t in legend)


# class 2: resolution = "auto"

def _auto_config(out, **backend):
    """Smooth S^1 case: V = diag(1, 0.8), SA beta = 1, kappa = 1, eps = 0.3, T = 1; FV from its
    default 256 cells (order 2 here: successive changes shrink by 0.19 to 0.31)."""
    cfg = copy.deepcopy(DEFAULT_STUDY)
    cfg["study"].update(name="auto", output=str(out), workers=1)
    cfg["backend"].update(kinds=["fv"], resolution="auto", allow_unresolved=False, **backend)
    cfg["time"].update(T=1.0, n_times=5)
    cfg["sweep"].update(values=[0.3], delta=0.05)
    return validate_config(cfg)


def test_auto_resolution_error_estimate_bounds_the_error(tmp_path):
    """tol = 1e-3: 256 -> 512 changes D by 2.6e-3, 512 -> 1024 T_dev by 1e-2, 1024 -> 2048
    both by less than 1e-3: accepted at 2048 with four levels. Its estimate bounds the error
    against n = 8192 (whose own error is about 1/30 of the accepted level's at order 2) with
    slack 1: the observed ratio is the largest over the saved times."""
    cfg = _auto_config(tmp_path / "auto", tol=1e-3, max_resolution=4096)
    summary = run_study(cfg, progress=False)
    assert summary["flagged"] == []
    ds = xr.open_dataset(summary["files"]["data"], engine="h5netcdf")
    assert ds["resolution_fv"].values[0] == 2048
    D, err = ds["deviation_w2_fv"].values[0], ds["error_w2_fv"].values[0]
    t_dev, err_t = float(ds["t_dev_fv"].values[0]), float(ds["error_t_dev_fv"].values[0])
    ds.close()
    ref = copy.deepcopy(cfg)
    ref["backend"]["resolution"] = 8192
    ref["study"]["output"] = str(tmp_path / "ref")
    ref = run_study(validate_config(ref), progress=False)
    dr = xr.open_dataset(ref["files"]["data"], engine="h5netcdf")
    true = np.abs(D - dr["deviation_w2_fv"].values[0])
    true_t = abs(t_dev - float(dr["t_dev_fv"].values[0]))
    dr.close()
    assert np.all(true[1:] <= err[1:]) and true_t <= err_t
    assert np.all(err[1:] <= 4 * true[1:])  # and not vacuous: within 4x of the error
    assert "+-" in summary["table"]


def test_auto_not_converged_within_budget_is_flagged(tmp_path, capsys):
    cfg = _auto_config(tmp_path / "out", tol=1e-3, max_resolution=512)
    path = tmp_path / "auto.toml"
    write_toml(path, cfg)
    assert cli(["run", str(path)]) == 5
    err = capsys.readouterr().err
    assert "fv at norm = 0.3 from t = 0.25" in err
    text = (tmp_path / "out" / "table.md").read_text()
    assert "did not converge within max_resolution = 512" in text and MARK.strip() in text
    assert len(list((tmp_path / "out" / "runs").glob("*.npz"))) == 4  # 2 levels x 2 runs


def test_settle_levels_estimates():
    """Geometric differences (ratio 1/4 at every time): three levels give the exact tail
    E rho / (1 - rho) = E / 3; two levels the design order 1 (the change itself); growing
    differences are not accepted."""
    base = np.array([0.0, 1.0, 2.0])
    D = [base + 0.064, base + 0.016, base + 0.004]  # changes 0.048, 0.012
    v = settle_levels(D, [1.0, 1.0 + 0.048, 1.0 + 0.06], tol=0.02, method="fv")
    assert v["converged"] and math.isclose(v["ratio"], 0.25)
    assert np.allclose(v["error_w2"], 0.004) and math.isclose(v["error_t_dev"], 0.004)
    two = settle_levels(D[1:], [math.inf, math.inf], tol=0.02, method="fv")
    assert two["converged"] and np.allclose(two["error_w2"], 0.012) and two["error_t_dev"] == 0
    grow = settle_levels([base, base + 1e-4, base + 3e-4], [1.0, 1.0, 1.0], tol=0.02,
                         method="fv")
    assert not grow["converged"] and np.all(np.isinf(grow["error_w2"]))
    assert not settle_levels(D[1:], [1.0, math.inf], tol=0.02,
                             method="fv")["converged"]  # inf vs finite
    # fv: a pre-asymptotic ratio faster than the design order 2 is read as 1/4
    fast = settle_levels([base + 0.1, base + 0.01, base + 1e-4], [1.0] * 3, tol=0.02, method="fv")
    assert math.isclose(fast["ratio"], 0.25) and np.allclose(fast["error_w2"], 0.0099 / 3)
    spectral = settle_levels([base + 0.1, base + 0.01, base + 1e-4], [1.0] * 3, tol=0.02,
                             method="spectral")
    assert spectral["ratio"] == 0.5 and np.allclose(spectral["error_w2"], 0.0099)


@pytest.mark.parametrize("method, d, top, levels", [
    ("fv", 2, 1024, (256, 512, 1024)), ("spectral", 3, 100, (32, 64)), ("fem", 3, 5, (3, 4, 5)),
    ("spectral", 2, None, (128, 256, 512, 1024, 2048, 4096))])
def test_refinement_levels(method, d, top, levels):
    assert refinement_levels(method, d, top) == levels


# class 3: the study's own checks, before any run

def _invalid(changes, key, tmp_path=None):
    cfg = copy.deepcopy(DEFAULT_STUDY)
    if tmp_path is not None:
        cfg["study"]["output"] = str(tmp_path / "out")
    for dotted, value in changes.items():
        section, k = dotted.split(".")
        cfg[section][k] = value
    with pytest.raises(ConfigError, match=f"'{key}'") as err:
        validate_config(cfg)
    return str(err.value)


@pytest.mark.parametrize("changes, words", [
    ({"initial.kappa": 200.0, "backend.resolution": 16}, "'fv'"),  # the FV case
    ({"initial.kappa": 300.0, "backend.kinds": ["spectral"], "backend.resolution": 8},
     "'spectral'"),
    ({"initial.kappa": 300.0, "backend.kinds": ["spectral"], "backend.resolution": 4,
      "model.d": 3, "model.V_diag": [1.0, 0.8, 0.6]}, "'spectral'"),
    ({"initial.kappa": 300.0, "backend.kinds": ["fem"], "backend.resolution": 0,
      "model.d": 3, "model.V_diag": [1.0, 0.8, 0.6]}, "'fem'"),
    ({"initial.kappa": 3e4, "backend.resolution": "auto", "backend.max_resolution": 2048},
     "'fv' at 'backend.resolution' = 256"),  # auto: the coarsest level must hold it
])
def test_initial_density_the_grid_cannot_hold_is_refused_before_any_run(tmp_path, changes,
                                                                         words):
    message = _invalid(changes, "initial.kappa", tmp_path)
    assert words in message and "'backend.resolution'" in message
    assert not (tmp_path / "out").exists()


def test_initial_density_check_runs_in_the_cli_before_particles(tmp_path, capsys):
    cfg = copy.deepcopy(SPECTRAL_S2)
    cfg["study"]["output"] = str(tmp_path / "out")
    cfg["backend"].update(resolution=4)
    cfg["initial"]["kappa"] = 300.0
    assert cli(["run", str(write_toml(tmp_path / "s.toml", cfg))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("meanfield: invalid study: 'initial.kappa'")
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.parametrize("n_times", [1, 0, True, 2.0])
def test_n_times_needs_t0_and_T(n_times):
    _invalid({"time.n_times": n_times}, "time.n_times")


def test_sweep_values_are_sorted_and_logged_duplicates_refused(caplog):
    cfg = copy.deepcopy(DEFAULT_STUDY)
    cfg["sweep"]["values"] = [0.3, 0.0, 0.1]
    with caplog.at_level(logging.INFO, logger="forgetting.config"):
        assert validate_config(cfg)["sweep"]["values"] == [0.0, 0.1, 0.3]
    assert "unsorted" in caplog.text
    _invalid({"sweep.values": [0.1, 0.2, 0.1]}, "sweep.values")
    _invalid({"sweep.values": [1, 1.0]}, "sweep.values")  # the same number twice


def _run_cli(args, capsys):
    status = cli(args)
    return status, capsys.readouterr().err.strip().splitlines()


def test_study_file_that_cannot_be_read(tmp_path, capsys):
    cases = {"a directory": tmp_path, "not UTF-8": tmp_path / "latin1.toml",
             "missing": tmp_path / "none.toml"}
    cases["not UTF-8"].write_bytes('[study]\nname = "caf\xe9"\n'.encode("latin-1"))
    for what, path in cases.items():
        status, err = _run_cli(["run", str(path)], capsys)
        assert status == 2 and len(err) == 1, what
        assert err[0].startswith("meanfield: invalid study:") and str(path) in err[0], what


@pytest.mark.parametrize("args, key", [
    (["--out", ""], "'--out'"), (["--out", "  "], "'--out'"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "'--workers'"),
    (["--workers", "0"], "'--workers'")])
def test_cli_options_name_themselves(tmp_path, capsys, monkeypatch, args, key):
    monkeypatch.chdir(tmp_path)
    study = spectral_study(tmp_path)
    status, err = _run_cli(["run", str(study), *args], capsys)
    assert status == 2 and len(err) == 1 and err[0].startswith(f"meanfield: invalid study: {key}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s2.toml"]  # nothing written


def test_cli_workers_over_config_scheduler_is_logged(tmp_path, capsys, caplog):
    cfg = copy.deepcopy(SPECTRAL_S2)
    cfg["study"].update(output=str(tmp_path / "out"), scheduler="tcp://127.0.0.1:1")
    cfg["backend"]["kinds"] = ["particles"]
    cfg["time"].update(T=0.5, n_times=2)
    with caplog.at_level(logging.INFO):
        assert cli(["run", str(write_toml(tmp_path / "s.toml", cfg)), "--workers", "1"]) == 0
    assert "study.scheduler = tcp://127.0.0.1:1 ignored" in caplog.text


@pytest.mark.parametrize("text, key", [
    ("[model]\nd = 2\nV = [[1.0, 0.0], [0.0]]", "model.V"),  # ragged
    ("[model]\nd = 2\nQ = [[1.0, nan], [0.0, 1.0]]", "model.Q"),  # non-finite
    ("[model]\nd = 2\nK = [[1.0, inf], [0.0, 1.0]]", "model.K"),
    ('[model]\nd = 2\nV = [[1.0, "a"], [0.0, 1.0]]', "model.V"),  # non-numeric
    ("[model]\nd = 2\nV = [[true, false], [false, true]]", "model.V"),  # booleans
    ("[model]\nd = 2\nV_diag = [1.0, nan]", "model.V_diag"),
    ("[model]\nd = 2\n[initial]\nmean = [1.0, inf]", "initial.mean"),
    ('[study]\nname = 5\n[model]\nd = 2', "study.name"),
    ('[study]\nname = ""\n[model]\nd = 2', "study.name"),
])
def test_toml_entries_of_the_wrong_kind(tmp_path, capsys, text, key):
    body = text.replace("[model]\nd = 2", "[model]\nd = 2\nbeta = 1.0")
    if "[study]" not in body:
        body = '[study]\nname = "x"\n' + body
    body += '\n[backend]\nkinds = ["fv"]\n[time]\nT = 1.0\n[sweep]\nvalues = [0.1]\n'
    path = tmp_path / "s.toml"
    path.write_text(body)
    status, err = _run_cli(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith(f"meanfield: invalid study: '{key}'"), err[0]


def _wrong_values(section, key, default):
    """Values of the wrong kind for a key: a table everywhere; a bool where a number (or an
    optional matrix, resolution, address) goes; a string where a number, flag or list goes;
    an empty list where a list or an optional entry goes."""
    if default is REQUIRED:
        default = DEFAULT_STUDY[section][key]
    out = [{"x": 1}]
    if isinstance(default, (int, float)) and not isinstance(default, bool) or default is None:
        out += [True]
    if not isinstance(default, str):
        out += ["1"]
    if isinstance(default, list) or default is None:
        out += [[]]
    return out


CASES = [(s, k, v) for s, keys in SCHEMA.items() for k, default in keys.items()
         for v in _wrong_values(s, k, default) if (s, k) != ("study", "output")]


@pytest.mark.parametrize("section, key, value", CASES,
                         ids=[f"{s}.{k}={v!r}" for s, k, v in CASES])
def test_every_key_refuses_a_value_of_the_wrong_kind(section, key, value):
    cfg = copy.deepcopy(DEFAULT_STUDY)
    cfg.setdefault(section, {})[key] = value
    if (section, key) == ("model", "V") and value is not None:
        cfg["model"]["V_diag"] = None
    with pytest.raises(ConfigError, match=f"'{section}.{key}'"):
        validate_config(cfg)


@pytest.mark.parametrize("value", [{"x": 1}, True, 5, ""])
def test_output_of_the_wrong_kind(value):
    cfg = copy.deepcopy(DEFAULT_STUDY)
    cfg["study"]["output"] = value
    with pytest.raises(ConfigError, match="'study.output'"):
        validate_config(cfg)


def test_table_shows_error_estimates_of_auto():
    """value +- estimate; an infinite estimate (changes that did not shrink) is shown as
    such; an infinite T_dev (reached at neither level) carries none."""
    cfg = _cfg([0.1, 0.3], resolution="auto")
    times = [0.0, 1.0, 2.0]
    done = _result(times, [0, 0.1, 0.2], math.inf)
    done["error_w2"], done["error_t_dev"] = np.array([0, 1e-3, 2e-3]), np.array(0.0)
    stuck = _result(times, [0, 0.4, 0.8], 0.75, 1.0, "resolution = 'auto' did not converge")
    stuck["error_w2"], stuck["error_t_dev"] = np.full(3, math.inf), np.array(math.inf)
    text = table(cfg, [0.1, 0.3], {"fv": [done, stuck]})
    assert "| 0.1 | 0.2000 +- 0.002 | inf |" in text
    assert "| 0.3 | 0.8000 +- inf (!) | 0.75 +- inf |" in text
    assert "what a flag of fv means" not in text  # a refinement's verdict, not the solver's
