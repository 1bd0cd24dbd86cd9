"""Mean-field self-attention on the sphere: model, measures, kernels, continuum solvers.

Public API (docs/design.md, section 3)::

    from continuum import Attention, Measure, lora_update, solve
"""

from .model import Attention, lora_update
from .measure import Measure
from .solve import solve

__all__ = ["Attention", "Measure", "lora_update", "solve"]
