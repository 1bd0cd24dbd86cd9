"""Validation suite: one module per claim, each with ``main(out_dir, quick)`` returning a
Record (or a list of Records).

Run all with ``python -m validation [--out DIR] [--quick] [--only NAME ...]``.
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
    # forgetting (LoRA)
    "forgetting_bounds",
    "forgetting_norm_transition",
    "forgetting_continuum_threshold",
    "forgetting_depth_transition",
    "paper_observables",
    "forgetting_continuum_vs_particles",
)
