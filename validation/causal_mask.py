"""Claim: with a causal mask (token i attends to j <= i) the tokens at position s follow the
causal continuum mu_s, moved by the field of (1/s) int_0^s mu_{s'} ds' (docs/design.md,
"Causal masks").

* The first token follows the Dirac solution x(t) = e^{c t V} x0 / |.| (c = 1 for SA,
  e^beta for USA with the prefix normalisation 1/i, Q = K = I): max error <= 1e-9 (DOP853 at
  rtol 1e-12). Refuted by a 1/n normalisation (c = e^beta / n).
* An s-independent start stays s-independent and equals the unmasked solution (continuum,
  spectral on S^1; a solver test: <= 1e-8 relative).
* Causal particles, token i drawn from rho0(., s_i) (a mean angle moving with s), converge to
  the sliced continuum (n = 128 nodes, M = 33 slices) at T = 1 like N^{-1/2}: W_1 on S^1 of
  all tokens against int_0^1 mu_s ds, mean over 16 seeds, N = 128 ... 4096, fitted slope
  -0.5 within 0.15. Control: the unmasked particles from the same tokens miss the causal
  continuum by at least 3x the causal error at the largest N (else the check could not fail).
Runtime: about 30 s (quick: N = 256 ... 2048, 12 seeds, about 10 s).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import expm

from continuum import Attention, Measure, solve
from continuum.wasserstein import wasserstein_circle
from particles import simulate
from particles.sampling import sample_positional, token_positions
from validation.plotting import plt, save
from validation.record import Record, Timer

NAME = "causal_mask"
V = np.array([[1.0, 0.2], [-0.1, 0.7]])


def rho_moving(p, s):
    """A law whose mean angle moves with the position s (and a second mode growing with s)."""
    th = np.arctan2(p[:, 1], p[:, 0])
    return (1 + 0.6 * np.cos(th - np.pi * s) + 0.2 * s * np.sin(2 * th)) / (2 * np.pi)


def models(normalized=True, beta=0.5):
    kw = dict(beta=beta, d=2, V=V, normalized=normalized)
    return Attention(**kw, causal=True), Attention(**kw)


def particle_errors(rho0, Ns, seeds, T=1.0, slices=33, controls=2):
    """Mean over seeds of W_1(causal particles, int_0^1 mu_s ds) and of W_1(tokens s >= 1/2,
    2 int_{1/2}^1 mu_s ds) at T, for each N; W_1 of the unmasked particles (the first
    ``controls`` seeds at the largest N) against the causal continuum."""
    causal, plain = models()
    sol = solve(causal, rho0, T, "spectral", 128, times=[0, T], slices=slices)
    half = slice((slices - 1) // 2, slices)
    q = np.array(sol.position_weights[half])
    q[0] = q[-1] = q[1] / 2
    dens = (q / q.sum()) @ np.stack([sol.density(1, m) for m in range(slices)][half])
    mu_half = Measure(sol.points, dens * sol.quadrature / (dens @ sol.quadrature))
    err, err_half, control = [], [], []
    for N in Ns:
        e, eh = [], []
        late = token_positions(int(N)) >= 0.5
        for seed in range(seeds):
            x0 = sample_positional(rho0, n=int(N), d=2, seed=seed)
            traj = simulate(causal, x0, T, times=[0, T], dt=0.1)
            e.append(wasserstein_circle(traj.measure(1), sol.measure(1)))
            eh.append(wasserstein_circle(Measure(traj.points[1][late],
                                                 np.full(late.sum(), 1 / late.sum())), mu_half))
            if N == Ns[-1] and seed < controls:
                other = simulate(plain, x0, T, times=[0, T], dt=0.1)
                control.append(wasserstein_circle(other.measure(1), sol.measure(1)))
        err.append(float(np.mean(e)))
        err_half.append(float(np.mean(eh)))
    return np.array(err), np.array(err_half), float(np.mean(control)), sol


def first_token_error(normalized, beta=0.7, T=2.0):
    rng = np.random.default_rng(3)
    W = np.diag([1.0, 0.5, -0.3]) + 0.2 * rng.standard_normal((3, 3))
    model = Attention(beta=beta, d=3, V=W, normalized=normalized, causal=True)
    x0 = rng.standard_normal((40, 3))
    x0 /= np.linalg.norm(x0, axis=1, keepdims=True)
    times = np.linspace(0, T, 5)
    traj = simulate(model, x0, T, times=times, method="dop853", rtol=1e-12, atol=1e-14)
    c = 1.0 if normalized else np.exp(beta)
    exact = np.array([expm(c * t * W) @ x0[0] for t in times])
    exact /= np.linalg.norm(exact, axis=1, keepdims=True)
    return float(np.abs(traj.points[:, 0] - exact).max())


def main(out_dir=None, quick=False):
    Ns = np.array([256, 512, 1024, 2048] if quick else [128, 256, 512, 1024, 2048, 4096])
    seeds = 12 if quick else 16
    with Timer() as t_exact:
        dirac = max(first_token_error(True), first_token_error(False))
        causal, plain = models()
        times = np.linspace(0, 1.0, 4)
        flat = solve(causal, lambda p, s: rho_moving(p, np.zeros(len(p))), 1.0, "spectral",
                     128, times=times, slices=5)
        ref = solve(plain, lambda p: rho_moving(p, np.zeros(len(p))), 1.0, "spectral", 128,
                    times=times)
        same = float(np.abs(flat.densities - ref.densities[:, None]).max()
                     / np.abs(ref.densities).max())
    with Timer() as t_conv:
        err, err_half, control, sol = particle_errors(rho_moving, Ns, seeds)
    slope = float(np.polyfit(np.log(Ns), np.log(err), 1)[0])
    slope_half = float(np.polyfit(np.log(Ns), np.log(err_half), 1)[0])

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].loglog(Ns, err, "o-", label=f"all tokens, slope {slope:.2f}")
    axes[0].loglog(Ns, err_half, "s-", label=f"tokens s >= 1/2, slope {slope_half:.2f}")
    axes[0].loglog(Ns, err[0] * np.sqrt(Ns[0] / Ns), "k--", label="N^-1/2")
    axes[0].loglog([Ns[-1]], [control], "rx", label="control: unmasked particles")
    axes[0].set_xlabel("tokens N")
    axes[0].set_ylabel(f"W_1 at T = 1 (mean of {seeds} seeds)")
    axes[0].legend(fontsize=8)
    theta = np.arctan2(sol.points[:, 1], sol.points[:, 0])
    order = np.argsort(theta)
    for m in (0, 8, 16, 24, 32):
        axes[1].plot(theta[order], sol.density(1, m)[order], label=f"s = {sol.positions[m]:.2f}")
    axes[1].plot(theta[order], sol.density(1)[order], "k--", label="int_0^1 mu_s ds")
    axes[1].set_xlabel("theta")
    axes[1].set_ylabel("mu_s at T = 1")
    axes[1].legend(fontsize=8)
    fig.suptitle("Causal mask on S^1: position slices and particles")
    figure = save(fig, out_dir, NAME)
    params = {"beta": 0.5, "V": V.tolist(), "T": 1.0, "n": 128, "slices": 33,
              "N": Ns.tolist(), "seeds": seeds}
    return [
        Record(case=f"{NAME}_first_token", claim="first token = Dirac solution (SA; USA "
               "with 1/i)", measured=dirac, expected=0.0, tolerance=1e-9, error_kind="value",
               figure=figure, runtime_s=t_exact.seconds, parameters=params),
        Record(case=f"{NAME}_s_independent", claim="s-independent start = unmasked solution "
               "(continuum, relative; solver test)", measured=same, expected=0.0,
               tolerance=1e-8, error_kind="value", figure=figure, runtime_s=0.0,
               parameters=params),
        Record(case=f"{NAME}_particles_rate", claim="causal particles -> sliced continuum, "
               "W_1 slope in N", measured=slope, expected=-0.5, tolerance=0.15,
               error_kind="abs", details=[{"N": int(n), "W1": e, "W1_late": h} for n, e, h in
                                          zip(Ns, err, err_half)],
               figure=figure, runtime_s=t_conv.seconds, parameters=params),
        Record(case=f"{NAME}_particles_rate_late", claim="tokens s >= 1/2 -> "
               "2 int_{1/2}^1 mu_s ds, W_1 slope in N", measured=slope_half, expected=-0.5,
               tolerance=0.15, error_kind="abs", figure=figure, runtime_s=0.0,
               parameters=params),
        Record(case=f"{NAME}_control", claim="control: unmasked particles miss the causal "
               "continuum (ratio to the causal error at the largest N, at least 3)",
               measured=control / err[-1], expected=3.0, tolerance=0.0, error_kind="at_least",
               figure=figure, runtime_s=0.0, parameters=params),
    ]


if __name__ == "__main__":
    for r in main():
        print(r)
