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
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, ive

from .checks import check_flag, check_integer, check_real

__all__ = ["uniform_growth_rate"]


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
