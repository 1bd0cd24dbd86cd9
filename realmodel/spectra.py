"""Spectra of attention heads' OV circuits, their gap, and first-order perturbation theory.

Head ``h`` of a layer maps a token x to :math:`W_O^h W_V^h x` (values, then its share of the
output projection; :class:`realmodel.weights.BertWeights` for the layout). With
:math:`W_V^h \\in R^{d_h \\times H}` and :math:`W_O^h \\in R^{H \\times d_h}` the OV circuit
:math:`W_O^h W_V^h` is H x H of rank at most d_h, and its nonzero eigenvalues are those of the
d_h x d_h matrix

.. math::

    M_h = W_V^h W_O^h

(AB and BA share their nonzero spectrum; if :math:`M_h u = \\lambda u` then
:math:`W_O^h u` is the OV circuit's eigenvector). In the mean-field picture V plays this role:
for concentrated data tokens follow :math:`e^{tV}`, so the eigenvalue with the largest real part
and the gap to the next mode decide where they end (docs/design.md, section 1).

A LoRA update of V, :math:`W_V \\to W_V + \\Delta_V`, changes :math:`M_h` by
:math:`\\Delta_V^h W_O^h` (rows of head h of :math:`\\Delta_V`): :func:`ov_matrix`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

__all__ = ["ov_matrix", "ov_spectrum", "sort_eigenvalues", "mode_indices", "group_modes",
           "spectral_gap", "EigenPerturbation", "eigen_perturbation"]


def ov_matrix(weights, layer: int, head: int, delta_V=None) -> np.ndarray:
    """:math:`M_h = (W_V + \\Delta_V)^h W_O^h`, d_h x d_h, float64.

    Parameters
    ----------
    weights : BertWeights
    layer, head : int
        Counted from 0.
    delta_V : ndarray (H, H), optional
        Update of the whole layer's W_V (stored (out, in)); head h uses its rows
        ``h*d_h:(h+1)*d_h``.
    """
    m = weights.head_matrices(layer, head)
    W_V = m["W_V"]
    if delta_V is not None:
        delta_V = np.asarray(delta_V, dtype=np.float64)
        H = weights.hidden
        if delta_V.shape != (H, H):
            raise ValueError(f"delta_V must have shape ({H}, {H}), got {delta_V.shape}")
        d = weights.head_dim
        W_V = W_V + delta_V[head * d:(head + 1) * d]
    return W_V @ m["W_O"]


def sort_eigenvalues(eigenvalues) -> np.ndarray:
    """Complex copy sorted by real part descending, then imaginary part descending (so a
    conjugate pair lists its member with positive imaginary part first)."""
    lam = np.asarray(eigenvalues).astype(np.complex128).ravel()
    order = np.lexsort((-lam.imag, -lam.real))
    return lam[order]


def ov_spectrum(weights, layer: int, head: int, delta_V=None) -> np.ndarray:
    """Eigenvalues of :math:`M_h = W_V^h W_O^h` (the nonzero spectrum of the OV circuit
    :math:`W_O^h W_V^h`), complex (d_h,), sorted by real part descending
    (:func:`sort_eigenvalues`). ``delta_V``: optional update of W_V (:func:`ov_matrix`)."""
    return sort_eigenvalues(np.linalg.eigvals(ov_matrix(weights, layer, head, delta_V)))


def _tolerance(lam: np.ndarray, tol):
    if tol is None:
        return 1e-9 * max(1.0, float(np.max(np.abs(lam)))) if lam.size else 0.0
    tol = float(tol)
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be finite and >= 0, got {tol!r}")
    return tol


def mode_indices(eigenvalues, tol=None) -> list:
    """Indices (into ``eigenvalues`` as given) of the modes: a real eigenvalue alone, a
    complex-conjugate pair together; the grouping of :func:`group_modes`.

    Going down the :func:`sort_eigenvalues` order, an eigenvalue lambda with
    ``|Im lambda| > tol`` is paired with the not yet used eigenvalue closest to conj(lambda) if
    that one is within ``tol`` of it; otherwise (a complex eigenvalue without partner, as for a
    complex matrix) it forms a mode alone. Real eigenvalues are never merged, so a repeated
    real eigenvalue gives two modes.

    Parameters
    ----------
    eigenvalues : array_like
    tol : float, optional
        Pairing tolerance; default ``1e-9 * max(1, max |lambda|)``. LAPACK returns the
        eigenvalues of a real matrix in exactly conjugate pairs, so any small value works.

    Returns
    -------
    list of ndarray of int
        One index array (length 1 or 2; a pair: positive imaginary part first) per mode, by
        real part descending.
    """
    lam = np.asarray(eigenvalues).astype(np.complex128).ravel()
    if not np.all(np.isfinite(lam)):
        raise ValueError("eigenvalues must be finite")
    tol = _tolerance(lam, tol)
    order = np.lexsort((-lam.imag, -lam.real))
    used = np.zeros(lam.size, dtype=bool)
    modes = []
    for position, i in enumerate(order):
        if used[i]:
            continue
        used[i] = True
        mode = [i]
        if abs(lam[i].imag) > tol:
            free = order[position + 1:][~used[order[position + 1:]]]
            if free.size:
                dist = np.abs(lam[free] - np.conj(lam[i]))
                if dist.min() <= tol:
                    j = free[np.argmin(dist)]
                    used[j] = True
                    mode.append(j)
        modes.append(np.array(mode, dtype=np.intp))
    return modes


def group_modes(eigenvalues, tol=None) -> list:
    """Eigenvalues grouped into modes: a real eigenvalue alone, a complex-conjugate pair
    together (:func:`mode_indices` says how).

    Parameters
    ----------
    eigenvalues : array_like
    tol : float, optional
        Pairing tolerance of :func:`mode_indices`.

    Returns
    -------
    list of ndarray
        One complex array (length 1 or 2) per mode, by real part descending.
    """
    lam = np.asarray(eigenvalues).astype(np.complex128).ravel()
    return [lam[idx] for idx in mode_indices(lam, tol)]


def spectral_gap(eigenvalues, tol=None) -> float:
    """Gap between the leading mode and the next one, conjugate pairs counted as one mode.

    With the eigenvalues grouped into modes by :func:`group_modes` (a real eigenvalue, or a
    complex-conjugate pair lambda, conj(lambda), which share their real part and so their
    growth rate :math:`|e^{t\\lambda}| = e^{t \\operatorname{Re}\\lambda}`), sorted by real part:

    .. math::

        g = \\operatorname{Re} \\lambda_{(1)} - \\operatorname{Re} \\lambda_{(2)},

    where :math:`\\lambda_{(1)}` is the leading mode (largest real part) and
    :math:`\\lambda_{(2)}` the largest real part among all other modes. So the conjugate of
    the top eigenvalue never closes the gap, while a different eigenvalue with the same real
    part (a repeated real eigenvalue, or another pair) gives g = 0: then no single direction
    dominates :math:`e^{tM}`.

    Parameters
    ----------
    eigenvalues : array_like
        Eigenvalues in any order (e.g. from :func:`ov_spectrum`).
    tol : float, optional
        Pairing tolerance of :func:`group_modes`.

    Returns
    -------
    float
        g >= 0. ValueError (naming ``eigenvalues``) if there are fewer than two modes.
    """
    modes = group_modes(eigenvalues, tol)
    if len(modes) < 2:
        raise ValueError(f"eigenvalues must contain at least two modes (a conjugate pair is "
                         f"one), got {len(modes)}")
    return float(modes[0][0].real - modes[1][0].real)


@dataclass(frozen=True)
class EigenPerturbation:
    """First-order change of a simple eigenpair (:func:`eigen_perturbation`).

    Attributes
    ----------
    eigenvalue : complex
        lambda of M.
    shift : complex
        d lambda = l^H Delta r / (l^H r).
    right, left : ndarray
        r (unit norm) and l with M r = lambda r, l^H M = lambda l^H.
    vector_shift : ndarray
        d r, first-order change of r (normalised by l^H d r = 0).
    rotation : float
        First-order angle (radians) between the lines spanned by r and r + d r:
        ``||(I - r r^H) d r||`` (r has unit norm).
    """

    eigenvalue: complex
    shift: complex
    right: np.ndarray
    left: np.ndarray
    vector_shift: np.ndarray
    rotation: float

    @property
    def first_order(self) -> complex:
        """lambda + d lambda."""
        return self.eigenvalue + self.shift


def eigen_perturbation(M, Delta, index: int = 0) -> EigenPerturbation:
    """First-order perturbation of eigenpair ``index`` (in :func:`sort_eigenvalues` order, 0 =
    largest real part) of M under M -> M + Delta.

    For a simple eigenvalue lambda with right and left eigenvectors r, l
    (:math:`M r = \\lambda r`, :math:`l^H M = \\lambda l^H`),

    .. math::

        \\lambda' = \\lambda + \\frac{l^H \\Delta r}{l^H r} + O(\\|\\Delta\\|^2), \\qquad
        r' = r + \\delta r + O(\\|\\Delta\\|^2), \\quad
        \\delta r = \\sum_{j \\ne 1} \\frac{l_j^H \\Delta r}{(\\lambda - \\lambda_j)\\,
        l_j^H r_j} r_j .

    :math:`\\delta r` is computed without the eigenbasis, as the solution of the bordered
    system :math:`(\\lambda I - M)\\delta r = (\\Delta - \\delta\\lambda I) r`,
    :math:`l^H \\delta r = 0` (the same vector; it stays well defined when M is not
    diagonalisable away from lambda). The error is O(||Delta||^2) with a constant that grows
    like 1 / (distance of lambda to the rest of the spectrum) times the eigenvalue condition
    number ||l|| ||r|| / |l^H r|.

    Parameters
    ----------
    M, Delta : array_like (n, n)
        Real or complex.
    index : int
        Which eigenvalue (0 = largest real part).
    """
    M = np.asarray(M)
    Delta = np.asarray(Delta)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"M must be a square matrix, got shape {M.shape}")
    if Delta.shape != M.shape:
        raise ValueError(f"Delta must have the shape of M {M.shape}, got {Delta.shape}")
    for name, a in (("M", M), ("Delta", Delta)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} has non-finite entries")
    n = M.shape[0]
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < n:
        raise ValueError(f"index must be an integer in [0, {n - 1}], got {index!r}")
    lam, vl, vr = scipy.linalg.eig(M, left=True, right=True)
    order = np.lexsort((-lam.imag, -lam.real))
    k = order[index]
    lam1 = complex(lam[k])
    r = vr[:, k] / np.linalg.norm(vr[:, k])
    left = vl[:, k]
    lr = np.vdot(left, r)
    if abs(lr) <= 1e-14 * np.linalg.norm(left):
        raise ValueError(f"eigenvalue {lam1} is defective (l^H r = 0): no first-order "
                         "expansion")
    shift = complex(np.vdot(left, Delta @ r) / lr)
    border = np.zeros((n + 1, n + 1), dtype=np.complex128)
    border[:n, :n] = lam1 * np.eye(n) - M
    border[:n, n] = r
    border[n, :n] = np.conj(left)
    rhs = np.concatenate([Delta @ r - shift * r, [0.0]])
    dr = np.linalg.solve(border, rhs)[:n]
    rotation = float(np.linalg.norm(dr - r * np.vdot(r, dr)))
    return EigenPerturbation(eigenvalue=lam1, shift=shift, right=r, left=left,
                             vector_shift=dr, rotation=rotation)
