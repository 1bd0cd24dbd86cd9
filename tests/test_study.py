"""Studies: TOML configs, sweeps with checkpoints, NetCDF output, CLI."""

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from forgetting.config import DEFAULT_STUDY, ConfigError, load_study, validate_config
from forgetting.study import run_study

ROOT = Path(__file__).resolve().parents[1]


def small_config(out, workers=1):
    cfg = copy.deepcopy(DEFAULT_STUDY)
    cfg["study"].update(name="small", output=str(out), workers=workers)
    cfg["backend"].update(resolution=64, n=100)
    cfg["time"].update(T=6.0, n_times=7)
    cfg["sweep"].update(values=[0.0, 0.4], delta=0.1)
    return validate_config(cfg)


def test_study_outputs_and_checkpoint_resume(tmp_path):
    cfg = small_config(tmp_path / "out", workers=2)  # a LocalCluster of two worker processes
    summary = run_study(cfg, progress=False)
    ds = xr.open_dataset(summary["files"]["data"], engine="h5netcdf")
    assert set(ds.dims) == {"norm", "time"} and ds.sizes["norm"] == 2
    for k in ("fv", "particles"):
        D = ds[f"deviation_w2_{k}"].values
        assert np.all(D[0] == 0.0)  # ||Delta|| = 0: identical runs
        assert D[1, -1] > D[1, 1] > 0.0  # eps = 0.4 > g = 0.2: the runs separate
    ds.close()
    for name in ("phase_fv", "phase_particles", "deviation_T", "table"):
        assert Path(summary["files"][name]).stat().st_size > 0
    points = sorted((tmp_path / "out" / "points").glob("*.npz"))
    assert len(points) == 4
    bases = sorted((tmp_path / "out" / "runs").glob("*.npz"))
    assert len(bases) == 4  # one base run per backend (norm sweep), no run for Delta = 0
    stamp = [p.stat().st_mtime_ns for p in points + bases]
    cfg["study"]["workers"] = 1  # not part of a point's key: the checkpoints still apply
    again = run_study(cfg, progress=False)  # every point comes from its checkpoint
    assert [p.stat().st_mtime_ns for p in points + bases] == stamp
    assert again["deviation_T"] == summary["deviation_T"]


@pytest.mark.parametrize("backend", ["fv", "particles"])
def test_shared_base_run_gives_the_deviation_of_a_forgetting_run(tmp_path, backend):
    """The study compares every fine-tuned run with one checkpointed base run (MeasureSeries);
    D(t) is the one forgetting_run computes from two fresh runs."""
    from forgetting.config import build_models, initial_density
    from forgetting.runs import forgetting_run

    cfg = small_config(tmp_path / "out")
    cfg["backend"]["kinds"] = [backend]
    summary = run_study(cfg, progress=False)
    ds = xr.open_dataset(summary["files"]["data"], engine="h5netcdf")
    base, tuned = build_models(cfg, 0.4)
    times = np.linspace(0, cfg["time"]["T"], cfg["time"]["n_times"])
    options = {"resolution": 64} if backend == "fv" else \
        {"n": 100, "method": "dop853", "rtol": 1e-7, "atol": 1e-10}
    run = forgetting_run(base, tuned, backend, initial_density(cfg), cfg["time"]["T"], times,
                         **options)
    for p in (1, 2):
        got = ds[f"deviation_w{p}_{backend}"].values[1]
        ref = run.deviation_w2 if p == 2 else run.deviation_w1
        assert np.allclose(got, ref, rtol=1e-12, atol=1e-14)
    ds.close()


def _set(section, key, value):
    def mutate(cfg):
        cfg.setdefault(section, {})[key] = value
    return mutate


def _drop(section, key):
    def mutate(cfg):
        del cfg[section][key]
    return mutate


@pytest.mark.parametrize("mutate, word", [
    (_set("modle", "d", 2), "modle"),
    (_set("model", "betta", 1.0), "model.betta"),
    (_drop("sweep", "values"), "sweep.values"),
    (_set("sweep", "axis", "depth"), "sweep.axis"),
    (_set("backend", "kinds", ["lattice"]), "backend.kinds"),
    (_set("time", "T", -1.0), "time.T"),
    (_set("model", "V", [[1.0, 0.0]]), "model.V"),
    (_set("perturbation", "rank", 0), "perturbation.rank"),
    (_set("study", "workers", 1.5), "study.workers"),
])
def test_invalid_configs_name_the_key(mutate, word):
    cfg = copy.deepcopy(DEFAULT_STUDY)
    mutate(cfg)
    with pytest.raises(ConfigError, match=word.replace(".", r"\.")):
        validate_config(cfg)


def test_shipped_configs_are_valid_and_demo_matches_its_file():
    from meanfield.cli import study_kind
    from realmodel.onset_study import load_onset_study
    from realmodel.study import load_study as load_realmodel_study

    loaders = {"realmodel": load_realmodel_study, "onset": load_onset_study,
               "forgetting": load_study}
    for path in sorted((ROOT / "studies").glob("*.toml")):
        loaders[study_kind(path)](path)
    shipped = load_study(ROOT / "studies" / "circle_norm_phase.toml")
    embedded = validate_config(copy.deepcopy(DEFAULT_STUDY))
    for section in ("model", "perturbation", "backend", "initial", "time", "sweep"):
        assert shipped[section] == embedded[section], section


def test_cli_run_and_errors(tmp_path):
    study = tmp_path / "s.toml"
    study.write_text(f"""
[study]
name = "cli"
output = "{tmp_path / 'out'}"
[model]
d = 3
V_diag = [1.0, 0.9, 0.8]
[backend]
kinds = ["particles"]
n = 50
[initial]
kind = "uniform"
[time]
T = 2.0
n_times = 5
[sweep]
values = [0.0, 0.2]
""")
    proc = subprocess.run([sys.executable, "-m", "meanfield.cli", "run", str(study)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "wrote data" in proc.stdout and (tmp_path / "out" / "study.nc").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text(study.read_text().replace("n_times", "ntimes"))
    proc = subprocess.run([sys.executable, "-m", "meanfield.cli", "run", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "time.ntimes" in proc.stderr


@pytest.mark.slow
def test_demo_default_study_runs(tmp_path):
    """The README's main job: the embedded default study, end to end."""
    proc = subprocess.run([sys.executable, "-m", "meanfield.cli", "demo", "--out",
                           str(tmp_path / "demo")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "demo" / "phase_fv.png").exists()
    ds = xr.open_dataset(tmp_path / "demo" / "study.nc", engine="h5netcdf")
    # the spectral-gap transition: below g = 0.2 no deviation reaches delta, above it does
    tdev = ds["t_dev_fv"].values
    norms = ds["norm"].values
    assert np.all(np.isinf(tdev[norms < 0.2])) and np.all(np.isfinite(tdev[norms > 0.2]))
    # at converged resolution the FV heals below the gap like the particles (issue 11: the
    # finite volumes' D(30) at eps = 0.1 within 0.01 of N = 4000 particles)
    i = int(np.argmin(np.abs(norms - 0.1)))
    assert abs(ds["deviation_w2_fv"].values[i, -1]
               - ds["deviation_w2_particles"].values[i, -1]) <= 0.01
    ds.close()


def test_continuum_and_particles_deviation_agree_quick():
    from validation import forgetting_continuum_vs_particles

    record = forgetting_continuum_vs_particles.main(quick=True)
    assert record.passed, record.details
