"""Observables of measures: cluster detection on S^1."""

from __future__ import annotations

import numpy as np

from ..checks import check_integer, check_memory, check_real
from ..measure import check_measure

__all__ = ["count_clusters_circle"]


def count_clusters_circle(mu, bins: int = 256, level: float = 2.0, min_mass: float = 0.02):
    """Number of clusters of a Measure on S^1, and their masses and centre angles.

    The measure is binned into ``bins`` equal arcs; a cluster is a maximal run of consecutive
    bins (periodically) each holding more than ``level`` times the uniform share 1/bins, whose
    total mass is at least ``min_mass``. Works alike for particles and for grid measures.

    Returns (count, masses, centres).
    """
    check_measure(mu, "mu", d=2)
    bins = check_integer(bins, "bins", low=3)
    check_memory(24.0 * bins, "bins", f"{bins} bins")
    level = check_real(level, "level", low=0, low_open=True)
    min_mass = check_real(min_mass, "min_mass", low=0, high=1)
    theta = np.mod(np.arctan2(mu.points[:, 1], mu.points[:, 0]), 2 * np.pi)
    idx = np.minimum((theta / (2 * np.pi) * bins).astype(int), bins - 1)
    hist = np.bincount(idx, weights=mu.weights, minlength=bins)
    dense = hist > level / bins
    if dense.all():
        return 0, np.array([]), np.array([])
    start = int(np.argmin(dense))  # a sparse bin: runs do not wrap past it
    order = np.roll(np.arange(bins), -start)
    masses, centres, run = [], [], []
    for b in np.append(order, order[0]):
        if dense[b]:
            run.append(b)
        elif run:
            m = hist[run].sum()
            if m >= min_mass:
                angles = (np.array(run) + 0.5) * 2 * np.pi / bins
                z = (hist[run] * np.exp(1j * angles)).sum()
                masses.append(m)
                centres.append(float(np.angle(z)))
            run = []
    return len(masses), np.array(masses), np.array(centres)
