"""The one entry for the nonlocal attention term: :func:`attention_field`.

Particles, :meth:`Measure.field <continuum.measure.Measure.field>` and every continuum solver
evaluate the field through this function. It checks its input and picks a path:

* ``"direct"``: the direct sum (Numba, :mod:`continuum.direct`), any d, Q, K, V; O(M N d)
  time, O(M d) memory. The reference every fast path is tested against.
* ``"harmonic"``: an expansion of the kernel in the harmonics of the sphere, exact up to a
  truncation chosen below round-off: on S^1 the Fourier expansion for Q^T K = c R(alpha)
  (:mod:`continuum.circle.field`, O((M + N) L)); on S^2 the spherical-harmonic expansion for
  any Q, K (:mod:`continuum.sphere.harmonic`: nonuniform transforms, O(M + N + L^2 log L),
  plus O(L^4) once per model when Q^T K is not c R).
* ``"auto"``: the expansion for clouds of at least 2^22 target-source pairs while
  beta ||Q^T K|| <= 9 (the choices are :func:`continuum.circle.field.fourier_preferred` and
  :func:`continuum.sphere.harmonic.transform_preferred`); on S^2 the targets where the
  expansion's error bound exceeds 1e-10 are recomputed by the direct sum. Otherwise the
  direct sum.

This module and :mod:`continuum.solve` are the two dispatchers of the ground floor: the only
core modules that import from ``continuum.circle`` or ``continuum.sphere``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .checks import check_choice, check_flag, check_real
from .direct import check_cloud_shapes, check_finite, check_model, check_weights, direct_field
from .direct import interaction_energy as direct_energy
from .direct import log_kernel_mean as direct_log_kernel_mean
from .geometry import check_on_sphere, check_points
from .family import check_family, sum_heads
from .model import Attention

__all__ = ["attention_field", "interaction_energy", "log_kernel_mean", "FIELD_METHODS"]

FIELD_METHODS = ("auto", "direct", "harmonic")


def attention_field(targets, sources, weights, model, method: str = "auto",
                    check: bool = True, tangent: bool = True) -> np.ndarray:
    """Attention field X at ``targets`` induced by the weighted cloud (``sources``, ``weights``).

    .. math::

        X(x) = P_x^\\perp V \\frac{\\sum_j w_j e^{\\beta\\langle Qx, K y_j\\rangle} y_j}{Z(x)},
        \\qquad P_x^\\perp y = y - \\langle x, y\\rangle x,

    with Z = sum_j w_j e^{beta <Qx, K y_j>} (SA, ``model.normalized``) or 1 (USA).

    Parameters
    ----------
    targets : ndarray (M, d)
        Points where the field is evaluated (on the unit sphere, to ``SPHERE_TOL``).
    sources : ndarray (N, d)
        Points of the measure (on the unit sphere, to ``SPHERE_TOL``).
    weights : ndarray (N,)
        Non-negative weights of the measure (probability weights for the mean-field model;
        for SA only their ratios matter).
    model : Attention or MultiHead
        A MultiHead's field is sum_h w_h X_h, each head's X_h by this function with its own
        path (``continuum.family``).
    method : {"auto", "direct", "harmonic"}
        Evaluation path (module docstring).
    check : bool
        Validate the input in full (types, shapes, non-negative weights with a positive sum,
        points on the sphere). Integrators pass False for their Runge-Kutta stages, whose
        points are off the sphere by O(dt^2) on purpose (P_x^perp is applied as written, so
        the ambient ODE x' = X(x) keeps |x| = 1 invariant), and the spectral S^2 solver for
        its nodal weights rho_j w_j, which may dip below 0. False skips those tests only:
        the model's type, the shapes and finite entries are always checked (O((M + N) d):
        measured 0.7% of the S^2 transforms and 0.2% of the S^1 expansion at M = N = 10^5,
        0.1% of the direct sum at M = 1000, N = 10^5), so a NaN state is an error naming
        the array, never a crash in the compiled kernels or the transforms.

    tangent : bool
        True: the field X above. False: the attention output itself,
        V sum_j w_j e^{beta<Qx, K y_j>} y_j / Z(x) without P_x^perp (what pre-LayerNorm adds
        to the residual stream: :mod:`particles.norms`); direct sum only.

    A causal model (``model.causal``, issue 24) needs targets = sources in order: target i
    sums over j <= i (SA normalised over j <= i, USA divided by sum_{j <= i} w_j). The
    harmonic expansions sum over the whole cloud, so a causal model (or ``tangent=False``)
    takes the direct sum: "auto" falls back to it, "harmonic" is refused.

    Returns
    -------
    ndarray (M, d), tangent to the sphere at each target (unless ``tangent=False``).

    Examples
    --------
    >>> import numpy as np
    >>> from continuum import Attention
    >>> x = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> X = attention_field(x, x, np.array([0.5, 0.5]), Attention(beta=0.0, d=3))
    >>> X  # beta = 0, V = I: X(x) = P_x^perp m with the mean m = (1/2, 1/2, 0)
    array([[0. , 0.5, 0. ],
           [0.5, 0. , 0. ]])
    """
    if not isinstance(model, Attention):  # several heads: head by head, each its own path
        return _field_of_heads(targets, sources, weights, model, method, check, tangent)
    check_choice(method, "method", FIELD_METHODS)
    tangent = check_flag(tangent, "tangent")
    if check_flag(check, "check"):
        targets, sources, weights = _checked(targets, sources, weights, model)
    else:
        check_model(model)
    targets = np.ascontiguousarray(targets, dtype=np.float64)
    sources = np.ascontiguousarray(sources, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if not check:  # the checks no caller may skip (the full ones imply them)
        check_cloud_shapes(targets, sources, weights, model.d)
        for name, values in (("targets", targets), ("sources", sources), ("weights", weights)):
            check_finite(values, name, " (an integrator's state or a solver's density has "
                         "become NaN or inf)")
    # --- issue 24: causal masks and the unprojected output take the direct sum -----------
    if getattr(model, "causal", False) or not tangent:
        if method == "harmonic":
            raise ValueError("method='harmonic' expands the unmasked tangent field: a causal "
                             "model or tangent=False needs method='direct' or 'auto' (which "
                             "falls back to the direct sum)")
        return direct_field(targets, sources, weights, model, project=tangent)
    # ---------------------------------------------------------------------------------------
    if method == "direct" or targets.shape[0] == 0:
        return direct_field(targets, sources, weights, model)
    if model.d == 2:
        from .circle.field import fourier_field, fourier_preferred

        if method == "harmonic" or fourier_preferred(model, len(targets), len(sources)):
            return fourier_field(targets, sources, weights, model)
        return direct_field(targets, sources, weights, model)
    if model.d == 3:
        from .sphere.harmonic import TRUSTED_BOUND, harmonic_field, transform_preferred

        threads = numba.get_num_threads()  # the same parallelism as the direct sum
        if method == "harmonic":
            return harmonic_field(targets, sources, weights, model, nthreads=threads)[0]
        if transform_preferred(model, len(targets), len(sources)):
            field, bound = harmonic_field(targets, sources, weights, model, nthreads=threads)
            redo = np.nonzero(~(bound <= TRUSTED_BOUND))[0]
            if redo.size:  # targets where the kernel's dynamic range defeats the expansion
                field[redo] = direct_field(targets[redo], sources, weights, model)
            return field
        return direct_field(targets, sources, weights, model)
    if method == "harmonic":
        raise ValueError(f"method='harmonic' exists for d = 2 and 3, got d={model.d}")
    return direct_field(targets, sources, weights, model)


def _field_of_heads(targets, sources, weights, model, method, check, tangent):
    """sum_h w_h X_h: the per-head loop of :func:`attention_field` for a MultiHead (a Layers
    is refused: its model in force depends on the time)."""
    check_family(model, layers=False)
    return sum_heads(model, lambda head: attention_field(targets, sources, weights, head,
                                                         method=method, check=check,
                                                         tangent=tangent))


def interaction_energy(points, weights, model) -> float:
    """Interaction energy of the measure sum_j w_j delta_{x_j}:

    .. math::

        E(\\mu) = \\frac{1}{2\\beta} \\iint \\left(e^{\\beta\\langle Qx, Ky\\rangle} - 1\\right)
                  d\\mu(x)\\, d\\mu(y)

    (the beta -> 0 limit (1/2) int int <Qx, Ky> at beta = 0). The direct double sum
    (:func:`continuum.direct.interaction_energy`, O(M^2)), or on S^2 for clouds of at least
    2^22 pairs with beta ||Q^T K|| <= 9 and beta >= 1e-3 the spherical-harmonic expansion
    (:func:`continuum.sphere.harmonic.harmonic_energy`, O(M), absolute error below 1e-9).
    A MultiHead's energy is sum_h w_h E_h: for USA heads with Q_h^T K_h = V_h = V_h^T the
    field sum_h w_h X_h is its gradient, so dE/dt = int |X|^2 dmu holds as for one head.
    """
    if not isinstance(model, Attention):
        check_family(model, layers=False)
        return float(sum_heads(model, lambda head: interaction_energy(points, weights, head)))
    d = check_model(model).d
    points = check_points(points, "points", d)
    weights = check_weights(weights, len(points))
    check_on_sphere(points, "points")
    if model.d == 3:
        from .sphere.harmonic import ENERGY_MIN_BETA, harmonic_energy, transform_preferred

        n = len(points)
        if model.beta >= ENERGY_MIN_BETA and transform_preferred(model, n, n):
            points = check_points(points, "points", 3)
            weights = np.ascontiguousarray(weights, dtype=np.float64)
            return harmonic_energy(points, weights, model, nthreads=numba.get_num_threads())[0]
    return direct_energy(points, weights, model)


def log_kernel_mean(points, weights, model, energy: float | None = None) -> float:
    """log int int e^{beta <Qx, Ky>} dmu dmu, finite for every beta (the energy's log-space
    companion: E = expm1(log_kernel_mean) / (2 beta)). Given the measure's ``energy`` (finite,
    beta > 0) it is log1p(2 beta E), free; else the shifted direct sum
    (:func:`continuum.direct.log_kernel_mean`). Not defined for several heads (a MultiHead has
    no single kernel): NaN."""
    if not isinstance(model, Attention):
        check_family(model, layers=False)
        return math.nan
    d = check_model(model).d
    points = check_points(points, "points", d)
    weights = check_weights(weights, len(points))
    if energy is not None:
        energy = check_real(energy, "energy", finite=False)
    if model.beta == 0:
        return 0.0
    if energy is not None and np.isfinite(energy) and 2 * model.beta * energy < 1e300:
        return float(np.log1p(2 * model.beta * energy))
    return direct_log_kernel_mean(points, weights, model)


def _checked(targets, sources, weights, model):
    d = check_model(model).d
    targets = check_points(targets, "targets", d)
    sources = check_points(sources, "sources", d)
    weights = check_weights(weights, sources.shape[0], of="sources")
    check_on_sphere(targets, "targets")
    check_on_sphere(sources, "sources")
    return targets, sources, weights
