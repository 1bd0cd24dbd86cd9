"""Linear stability of the uniform measure (Q^T K = V = I).

For the uniform measure on S^{d-1} perturbed by a spherical harmonic of degree l
(Fourier mode k on S^1), the perturbation grows like e^{lambda_l t} with

.. math::

    \\lambda_l^{USA} = \\frac{l(l+d-2)}{\\beta} h_l(\\beta), \\quad
    h_l(\\beta) = \\Gamma(d/2) (2/\\beta)^{d/2-1} I_{l+d/2-1}(\\beta),

    \\lambda_l^{SA} = \\frac{l(l+d-2)\\, I_{l+d/2-1}(\\beta)}{\\beta\\, I_{d/2-1}(\\beta)},

I_nu the modified Bessel function (d = 2: k^2 I_k/beta; d = 3: l(l+1) i_l/beta with i_l the
modified spherical Bessel function). At beta = 0 both equal (d-1)/d for l = 1 and 0 for l >= 2.
These hold only for Q^T K = V = I (otherwise the uniform measure is not stationary).

Several heads (``continuum.MultiHead``) with Q_h^T K_h = V_h = I: the uniform measure is
stationary for each head, the linearised field is sum_h w_h of the heads' linearisations, and
all of them are diagonal in the same harmonics (O(d) symmetry), so the rates add:
lambda_l = sum_h w_h lambda_l(beta_h, SA or USA) (:func:`heads_growth_rate`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, ive

from .checks import check_flag, check_integer, check_real
from .family import check_family, heads_of

__all__ = ["uniform_growth_rate", "heads_growth_rate"]


def uniform_growth_rate(l: int, beta: float, d: int, normalized: bool = True) -> float:
    """Growth rate of degree ``l`` (mode k on S^1) around the uniform measure on S^{d-1}."""
    l = check_integer(l, "l (the degree)", low=1)
    beta = check_real(beta, "beta", low=0)
    d = check_integer(d, "d", low=2)
    check_flag(normalized, "normalized")
    nu = d / 2 - 1
    if beta == 0:
        return (d - 1) / d if l == 1 else 0.0
    lap = l * (l + d - 2)
    if normalized:
        return lap * ive(l + nu, beta) / (beta * ive(nu, beta))
    # h_l = Gamma(d/2) (2/beta)^nu I_{l+nu}(beta); I = ive * e^beta, assembled in logs
    log_h = gammaln(d / 2) + nu * math.log(2 / beta) + math.log(ive(l + nu, beta)) + beta
    return lap * float(np.exp(log_h)) / beta


def heads_growth_rate(l: int, model) -> float:
    """Growth rate of degree ``l`` around the uniform measure for an Attention or a MultiHead
    whose heads all have Q_h^T K_h = V_h = I: sum_h w_h uniform_growth_rate(l, beta_h, d,
    normalized_h) (module docstring). ValueError naming the head otherwise."""
    check_family(model, layers=False)
    total = 0.0
    eye = np.eye(model.d)
    for h, (w, head) in enumerate(heads_of(model)):
        if not (np.array_equal(head.A, eye) and np.array_equal(head.V, eye)):
            raise ValueError(f"model head {h}: the rates hold for Q^T K = V = I only (else the "
                             f"uniform measure is not stationary)")
        total += w * uniform_growth_rate(l, head.beta, model.d, head.normalized)
    return total
