"""Validation suite: one module per claim, each with ``main(out_dir, quick)`` returning a
Record (or a list of Records).

Run all with ``python -m validation [--out DIR] [--quick] [--only NAME ...] [--workers N]``.
"""

CASES = (
    # foundation: kernel, particles
    "kernel_reference",
    "rk4_order",
    "growth_rates",
    "kuramoto",
    "energy_usa",
    # circle solvers
    "circle_kuramoto",
    "circle_growth_rates",
    "circle_spectral_vs_fv",
    "circle_particles",
    "circle_metastability",
    "circle_conservation",
    # sphere (DOLFINx DG)
    "sphere_transport",
    "sphere_growth_rates",
    "sphere_conservation",
    "sphere_particles",
    "sphere_particles_sobolev",
    # sphere (spectral)
    "sphere_spectral_growth_rates",
    "sphere_poisson_family",
    "sphere_spectral_convergence",
    "sphere_spectral_particles",
    # forgetting (LoRA)
    "forgetting_bounds",
    "forgetting_norm_transition",
    "forgetting_continuum_threshold",
    "forgetting_depth_transition",
    "paper_observables",
    "forgetting_continuum_vs_particles",
    # the transformer family (issue 24)
    "causal_mask",
    "layernorm_equiangular",
    "forgetting_family_threshold",
    "family_exact",
    # a real transformer (all-MiniLM-L6-v2)
    "realmodel_head_flow",
    "realmodel_ov_flips",
)

#: cases too long for the default run (hours on two cores, or a single piece of a quarter of
#: an hour that would set the suite's wall time): ``python -m validation --extended``
EXTENDED_CASES = (
    "forgetting_threshold_level5",
    "family_multihead_threshold",
)

#: seconds on one core of a whole case (the cases without ``tasks``), measured in the full run
#: of 2026-11-28: the runner starts the longest first
COST_S = {
    "family_multihead_threshold": 1000.0,  # measured 2026-12-04 at load average 5 (2 cores)
    "realmodel_ov_flips": 200.0,
    "sphere_growth_rates": 113.0,
    "sphere_spectral_particles": 80.0,  # measured 2026-11-29, idle
    "sphere_spectral_convergence": 45.0,
    "forgetting_continuum_vs_particles": 100.0,
    "circle_metastability": 88.0,
    "sphere_particles": 52.0,
    "forgetting_bounds": 52.0,
    "circle_particles": 47.0,
    "sphere_transport": 30.0,
    "paper_observables": 18.0,
    "growth_rates": 14.0,
    "forgetting_norm_transition": 12.0,
    "forgetting_depth_transition": 11.0,
    "causal_mask": 60.0,  # measured 2026-12-04, 2 workers, load about 3
    "forgetting_family_threshold": 15.0,  # measured 2026-12-04
}
