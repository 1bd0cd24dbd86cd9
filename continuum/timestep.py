"""Time-step scales shared by the particle integrator and the continuum solvers."""

from __future__ import annotations

import numpy as np

__all__ = ["field_scale", "default_dt"]


def field_scale(model) -> float:
    """L_est = ||V||_2 (1 + 2 beta ||Q^T K||_2): the size of the field's Jacobian, used for the
    default step and the stability check (a proxy, not a proven Lipschitz bound)."""
    return float(np.linalg.norm(model.V, 2) * (1 + 2 * model.beta * np.linalg.norm(model.A, 2)))


def default_dt(model) -> float:
    """Default RK4 step: min(0.05, 0.1 / L_est), so that (dt L_est)^4 / 120 < 1e-6."""
    return min(0.05, 0.1 / max(field_scale(model), 1e-300))
