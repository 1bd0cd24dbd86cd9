"""When does a perturbation keep the top mode of a matrix? A sufficient criterion finer than
||Delta|| < g (issue 23, item 3; derived in docs/design.md, "Real model").

**Normal M** (orthonormal eigenvectors; top eigenvector u_1, real eigenvalue lambda_1, gap
g = lambda_1 - Re lambda_2). Split Delta in the basis (u_1, its orthogonal complement):

.. math::

    a = u_1^T \\Delta u_1, \\quad b = P_\\perp \\Delta u_1, \\quad c^T = u_1^T \\Delta P_\\perp,
    \\quad E = P_\\perp \\Delta P_\\perp .

M + Delta is block [[lambda_1 + a, c^T], [b, M_perp + E]]. If
:math:`\\delta = g + a - \\|E\\|_2 > 0` and :math:`\\|b\\|\\,\\|c\\| < \\delta^2 / 4`, Stewart's
theorem (Stewart 1973; Stewart and Sun 1990, Thm V.2.7) gives an invariant vector
u_1 + P_perp p with :math:`\\|p\\| \\le 2\\|b\\| / \\delta < 1` (within 45 degrees of u_1)
whose eigenvalue :math:`\\mu = \\lambda_1 + a + c^T p` stays above the real parts of all the
others (they are eigenvalues of M_perp + E - p c^T), so the top mode is **kept**:

.. math::

    g + a > 2\\sqrt{\\|b\\|\\,\\|c\\|} + \\|E\\|_2
    \\qquad (\\text{symmetric } \\Delta:\\ g + a > 2\\|b\\| + \\|E\\|).

**Non-normal M** (the OV matrices): the same in the eigenvector coordinates. With M = R Lambda
R^{-1} (unit columns r_i), left eigenvectors the rows l_i^H of R^{-1}, and
:math:`\\tilde\\Delta = R^{-1} \\Delta R`: a = l_1^H Delta r_1, b = the rest of column 1 of
tilde Delta, c^T the rest of row 1, E the rest, and Re a in place of a. The norms are those of
the eigen-coordinates; in the original norm
:math:`\\|\\tilde\\Delta\\| \\le \\kappa(R) \\|\\Delta\\|`,
:math:`\\kappa(R) = \\|R\\|\\,\\|R^{-1}\\|`,
and |a| <= kappa_1 ||Delta|| with kappa_1 = ||l_1|| ||r_1|| the eigenvalue condition number:
for a normal M both are 1 and the criterion is the one above. The criterion is sufficient,
not necessary. When b = c = 0 the continued eigenvalue is lambda_1 + a exactly and the others
are those of M_perp + E; if the largest real part among them is Re lambda_2 + ||E|| (e.g.
Delta diagonal in the eigenbasis, its largest lower entry in modulus nonnegative and at
lambda_2's place), the criterion is exact: kept if and only if the top mode does not flip.

A complex top mode (a conjugate pair) has a 2-D invariant plane; the criterion is then not
evaluated (``kept`` is None).
"""

from __future__ import annotations

import numpy as np

from continuum.checks import check_array

from .spectra import mode_indices, spectral_gap

__all__ = ["mode_criterion"]


def mode_criterion(M, Delta) -> dict:
    """The criterion of the module docstring for M -> M + Delta.

    Returns
    -------
    dict
        ``{"gap", "a" (real part), "b" = ||b||, "c" = ||c||, "E" = ||E||_2, "margin" =
        g + a - 2 sqrt(||b|| ||c||) - ||E||, "kept": margin > 0 (None for a complex top
        mode), "kappa": kappa(R), "kappa_top": ||l_1|| ||r_1||}``.
    """
    M = check_array(M, "M", ndim=2)
    if M.shape[0] != M.shape[1] or M.shape[0] < 2:
        raise ValueError(f"M must be square of size >= 2, got shape {M.shape}")
    Delta = check_array(Delta, "Delta", shape=M.shape)
    lam, R = np.linalg.eig(M)
    modes = mode_indices(lam)
    if len(modes) < 2:
        raise ValueError("M must have at least two modes (a conjugate pair is one)")
    top = modes[0]
    R = R / np.linalg.norm(R, axis=0)
    L = np.linalg.inv(R)  # rows l_i^H
    out = {"gap": spectral_gap(lam), "kappa": float(np.linalg.cond(R)),
           "kappa_top": float(np.linalg.norm(L[top[0]]))}
    if len(top) == 2:
        return {**out, "a": None, "b": None, "c": None, "E": None, "margin": None,
                "kept": None}
    i = top[0]
    D = L @ Delta @ R
    rest = np.delete(np.arange(M.shape[0]), i)
    a = float(D[i, i].real)
    b = float(np.linalg.norm(D[rest, i]))
    c = float(np.linalg.norm(D[i, rest]))
    E = float(np.linalg.norm(D[np.ix_(rest, rest)], 2))
    margin = out["gap"] + a - 2.0 * np.sqrt(b * c) - E
    return {**out, "a": a, "b": b, "c": c, "E": E, "margin": float(margin),
            "kept": bool(margin > 0)}
