"""The observables of the paper's particle code: "time cluster" and "time bifurcation".

Given base tokens (model V) and fine-tuned tokens (same initial tokens, perturbed model):

* the reference clusters are the base model's limiting clusters: the base tokens at the final
  time, grouped (tokens closer than ``delta`` / 2 share a cluster; centres are the normalised
  means);
* time cluster = first saved time at which every fine-tuned token is within ``delta``
  (geodesic) of a reference cluster centre;
* time bifurcation = first saved time after the time cluster at which some fine-tuned token is
  farther than ``delta`` from every reference centre again.

Both are inf when the event does not happen within the run.
"""

from __future__ import annotations

import numpy as np

from continuum.checks import check_array, check_memory, check_real
from continuum.geometry import check_on_sphere, check_points
from continuum.initial import check_times

__all__ = ["reference_clusters", "cluster_times"]


def reference_clusters(points: np.ndarray, delta: float) -> np.ndarray:
    """Centres of the groups of ``points`` (unit vectors) closer than delta/2 (greedy)."""
    remaining = check_points(points, "points")
    check_on_sphere(remaining, "points")
    check_real(delta, "delta", low=0, low_open=True)
    centres = []
    while len(remaining):
        seed = remaining[0]
        close = np.arccos(np.clip(remaining @ seed, -1, 1)) <= 0.5 * delta
        c = remaining[close].mean(axis=0)
        centres.append(c / np.linalg.norm(c))
        remaining = remaining[~close]
    return np.array(centres)


def cluster_times(times, tuned_points, centres, delta: float):
    """(time_cluster, time_bifurcation) of the fine-tuned trajectory (nt, N, d)."""
    delta = check_real(delta, "delta", low=0, low_open=True)
    times = np.atleast_1d(check_array(times, "times"))
    _, times = check_times(float(times.max(initial=0.0)), times)  # increasing, >= 0
    centres = check_points(centres, "centres")
    tuned_points = np.asarray(tuned_points)
    if tuned_points.ndim != 3 or tuned_points.shape[0] != times.size \
            or tuned_points.shape[2] != centres.shape[1]:
        raise ValueError(f"tuned_points must have shape ({times.size}, N, {centres.shape[1]}) "
                         f"(saved times, tokens, d), got {tuned_points.shape}")
    check_points(tuned_points.reshape(-1, centres.shape[1]), "tuned_points")
    check_memory(8.0 * tuned_points.shape[0] * tuned_points.shape[1] * len(centres),
                 "tuned_points", f"{tuned_points.shape[:2]} tokens x {len(centres)} centres")
    inner = np.einsum("tnd,kd->tnk", tuned_points, centres)
    dist = np.arccos(np.clip(inner.max(axis=2), -1, 1))  # geodesic to the nearest centre
    inside = dist.max(axis=1) <= delta
    if not inside.any():
        return np.inf, np.inf
    k = int(np.argmax(inside))
    after = np.nonzero(~inside[k:])[0]
    t_bif = float(times[k + after[0]]) if after.size else np.inf
    return float(times[k]), t_bif
