"""Small text corpora that installed packages ship, as plain Python / numpy structures.

Nothing is downloaded and nothing is copied into this repository: the files are read where the
packages installed them, found through ``importlib.metadata.files`` (the packages are never
imported).

From ``gensim``'s test data (``gensim/test/test_data/``; gensim is LGPL-2.1, the data sets keep
their own terms, see the README):

- ``pang_lee_polarity.cor``: 200 movie-review sentences of the sentence polarity data set of
  Pang and Lee (2005), one per line as ``__label__neg <text>`` or ``__label__pos <text>``
  (100 of each). The file is cp1252-encoded.
- ``simlex999.txt``: SimLex-999 (Hill, Reichart and Korhonen 2015), 999 word pairs with the mean
  human similarity rating (0-10).
- ``wordsim353.tsv``: WordSim-353 (Finkelstein et al. 2002), 353 word pairs with the mean human
  relatedness rating (0-10).
- ``lee.cor`` and ``similarities0-1.txt``: the Lee corpus (Lee, Pincombe and Welsh 2005), 50
  short news documents (cp1252), and their mean human similarity ratings, stored as an upper
  triangle with ones on the diagonal, scaled to [0, 1].

From ``chatterbot-corpus`` (BSD-3-Clause): question-answer conversations in YAML, one folder per
language.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

__all__ = ["package_file", "gensim_test_data", "pang_lee_polarity", "simlex999", "wordsim353",
           "lee_corpus", "chatterbot_languages", "chatterbot_files", "chatterbot_pairs",
           "POLARITY_LABELS"]

#: label values of :func:`pang_lee_polarity`
POLARITY_LABELS = {"neg": 0, "pos": 1}


def package_file(dist: str, relative: str) -> Path:
    """Path of file ``relative`` (as listed in the distribution's RECORD) of installed
    distribution ``dist``; FileNotFoundError saying how to install it otherwise."""
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(f"{dist} is not installed: run ./bootstrap install (it installs "
                                "the [realmodel] extra)") from None
    for f in files:
        if str(f).replace("\\", "/") == relative:
            return Path(f.locate()).resolve()
    raise FileNotFoundError(f"{dist} {metadata.version(dist)} does not ship {relative}")


def gensim_test_data(name: str) -> Path:
    """Path of ``gensim/test/test_data/<name>`` in the installed gensim."""
    return package_file("gensim", f"gensim/test/test_data/{name}")


def pang_lee_polarity() -> tuple:
    """(sentences, labels): the 200 Pang-Lee sentences (str, as in the file: lower-cased and
    tokenised with spaces) and int labels (0 = negative, 1 = positive;
    :data:`POLARITY_LABELS`)."""
    sentences, labels = [], []
    text = gensim_test_data("pang_lee_polarity.cor").read_text(encoding="cp1252")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        tag, _, sentence = line.partition(" ")
        label = tag.removeprefix("__label__")
        if label not in POLARITY_LABELS or not sentence.strip():
            raise ValueError(f"pang_lee_polarity.cor line {number}: expected '__label__neg' or "
                             f"'__label__pos' and a sentence, got {line[:60]!r}")
        sentences.append(sentence.strip())
        labels.append(POLARITY_LABELS[label])
    return sentences, np.array(labels, dtype=np.int64)


def _word_pairs(name: str) -> tuple:
    pairs, scores = [], []
    for line in gensim_test_data(name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        w1, w2, score = line.split("\t")
        pairs.append((w1, w2))
        scores.append(float(score))
    return pairs, np.array(scores)


def simlex999() -> tuple:
    """(pairs, scores): SimLex-999's 999 (word1, word2) pairs and mean similarity ratings."""
    return _word_pairs("simlex999.txt")


def wordsim353() -> tuple:
    """(pairs, scores): WordSim-353's 353 (word1, word2) pairs and mean relatedness ratings."""
    return _word_pairs("wordsim353.tsv")


def lee_corpus() -> tuple:
    """(documents, similarity): the 50 Lee documents (str) and the symmetric 50 x 50 matrix of
    mean human similarity ratings in [0, 1] (ones on the diagonal), rebuilt from the stored
    upper triangle as U + U^T - diag(U)."""
    text = gensim_test_data("lee.cor").read_text(encoding="cp1252")
    documents = [line.strip() for line in text.splitlines() if line.strip()]
    upper = np.loadtxt(gensim_test_data("similarities0-1.txt"))
    if upper.shape != (len(documents), len(documents)) or np.any(np.tril(upper, -1) != 0):
        raise ValueError(f"similarities0-1.txt should be an upper-triangular "
                         f"{len(documents)} x {len(documents)} matrix, got shape {upper.shape}")
    return documents, upper + upper.T - np.diag(np.diag(upper))


def chatterbot_files(language: str) -> list:
    """Paths of the YAML files of one language of chatterbot-corpus, sorted."""
    prefix = f"chatterbot_corpus/data/{language}/"
    try:
        files = metadata.files("chatterbot-corpus") or []
    except metadata.PackageNotFoundError:
        raise FileNotFoundError("chatterbot-corpus is not installed: run ./bootstrap install "
                                "(it installs the [realmodel] extra)") from None
    return sorted(Path(f.locate()).resolve() for f in files
                  if str(f).startswith(prefix) and str(f).endswith(".yml"))


def chatterbot_languages() -> list:
    """Languages (folder names) of chatterbot-corpus."""
    files = metadata.files("chatterbot-corpus") or []
    return sorted({str(f).split("/")[2] for f in files
                   if str(f).startswith("chatterbot_corpus/data/") and str(f).endswith(".yml")})


def chatterbot_pairs(language: str = "english") -> list:
    """(category, question, answer) triples of one language, file by file (sorted by name).

    A conversation ``[s0, s1, ..., sk]`` of a YAML file gives the consecutive pairs
    ``(s0, s1), (s1, s2), ...``; the category is the file's first listed category. Non-string
    turns (YAML turning e.g. ``yes`` into a bool) are kept as their str. An entry that is not
    a list is skipped: in chatterbot-corpus 1.3.3 one entry of english/trivia.yml lost a dash
    (``- question`` instead of ``- - question``), so YAML reads the question and its answer as
    one string.
    """
    files = chatterbot_files(language)
    if not files:
        raise ValueError(f"language must be one of {chatterbot_languages()}, got {language!r}")
    out = []
    for path in files:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        categories = content.get("categories") or [path.stem]
        for conversation in content.get("conversations") or []:
            if not isinstance(conversation, list):
                continue
            turns = [str(s).strip() for s in conversation]
            out.extend((str(categories[0]), q, a) for q, a in zip(turns[:-1], turns[1:]))
    return out
