"""The LoRA forgetting study: base vs fine-tuned runs from one initial measure and how far
apart they drift.

Modules: ``runs`` (:func:`forgetting_run`, D(t), T_dev), ``bounds`` (Lipschitz constants,
Gronwall bound, spectral gap, the exact Dirac solution), ``observables`` (the paper's time
cluster / time bifurcation), ``sweep`` (checkpointed parallel sweeps), ``config`` (study TOML
schema and validation), ``study`` (``meanfield run``), ``report`` (figures, tables), ``cli``
(the ``meanfield`` console script).
"""

from .runs import ForgettingRun, deviation, forgetting_run, time_to_deviation

__all__ = ["forgetting_run", "ForgettingRun", "deviation", "time_to_deviation"]
