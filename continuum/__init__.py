"""Mean-field self-attention on the sphere: model, measures, kernels, continuum solvers.

Public API (docs/design.md, section 3)::

    from continuum import Attention, Measure, lora_update, solve, UnderResolved
    from continuum import MultiHead, Layers
"""

from .family import Layers, MultiHead
from .model import Attention, lora_update
from .measure import Measure
from .resolution import UnderResolved
from .solve import solve

__all__ = ["Attention", "Measure", "lora_update", "solve", "UnderResolved", "MultiHead",
           "Layers"]
