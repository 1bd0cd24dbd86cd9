import json
import subprocess
import sys

import numpy as np
import xarray as xr

from continuum.demo import run_demo


def test_demo_writes_figures_data_and_summary(tmp_path):
    summary = run_demo(out=tmp_path, n=150, T=2.0, n_times=5, log=lambda *a: None)
    for name in ("demo_clouds.png", "demo_deviation.png", "demo.nc", "demo_summary.json"):
        assert (tmp_path / name).stat().st_size > 0
    ds = xr.open_dataset(tmp_path / "demo.nc", engine="h5netcdf")
    dev = ds["deviation_w2_geodesic"].values
    assert dev[0] < 1e-7 and dev[-1] > 0  # same initial tokens, then the runs separate
    np.testing.assert_allclose(np.linalg.norm(ds["base"].values, axis=2), 1.0, atol=1e-12)
    assert np.isclose(summary["lora_spectral_norm"], 0.3)
    assert json.loads((tmp_path / "demo_summary.json").read_text())["parameters"]["n"] == 150
    ds.close()


def test_cli_demo_prints_where_it_wrote(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "continuum.cli", "demo", "--out", str(out),
                           "--n", "100", "--T", "1", "--n-times", "3"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert str(out / "demo_deviation.png") in proc.stdout
