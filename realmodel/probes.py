"""Forgetting probes of a BERT sentence encoder, item by item, with their chance levels,
ceilings and bootstrap intervals, and the fine-tuning task's own held-out accuracy.

Every text is embedded as a sentence (:func:`realmodel.numpy_model.encode`: float64, pooled,
unit norm), so the model's similarity of two texts is the cosine
:math:`\\cos(a, b) = \\langle e_a, e_b\\rangle`. A probe is a statistic of items:

============== ============================ ==================== ======== =====================
probe          items                        statistic            chance   ceiling
============== ============================ ==================== ======== =====================
simlex999      999 word pairs (SimLex-999)  Spearman rho         0        1
wordsim353     353 word pairs (WordSim-353) Spearman rho         0        1
lee_pearson    1225 Lee document pairs      Pearson r            0        1
lee_spearman   1225 Lee document pairs      Spearman rho         0        1
retrieval_mrr  question -> answer queries   mean 1 / rank        H_m / m  :func:`qa_structure`
============== ============================ ==================== ======== =====================

Chance is the expected value for a model whose cosines are independent of the human scores
(correlation 0) or whose ranking of the m candidate answers is a uniform random order
(:math:`E[1/\\mathrm{rank}] = H_m / m`, :math:`H_m` the harmonic number). Ceilings: a
correlation of 1 (the human scores themselves; their inter-rater agreement is lower but not
shipped); for retrieval, identical question texts that occur with k different answers are k
queries with one embedding, so without ties at most one of them ranks first: the best
tie-free ranking puts the answers at ranks 1, ..., k (most frequent first) and the ceiling is
below 1 (:func:`qa_structure`). Word-pair and document-pair items are not independent (a word
occurs in several pairs), so item bootstrap intervals (:func:`bootstrap_probes`) are a guide,
not an exact coverage statement.

The task: polarity of held-out Pang-Lee sentences by the nearest class centroid (cosine) of the
training sentences' embeddings (:func:`task_accuracy`); chance 1/2 on a balanced held-out set,
ceiling 1.

Item data are cached per BertWeights object (weakly: the entry goes with the object).
BertWeights is immutable, so an object's probes never change.
"""

from __future__ import annotations

import functools
import weakref

import numpy as np
from scipy.stats import pearsonr, spearmanr

from continuum.checks import check_integer

from . import data
from .numpy_model import encode
from .stats import bootstrap_interval
from .tokenizer import encode_ids, load_tokenizer
from .weights import BertWeights

__all__ = ["PROBE_KEYS", "probe_items", "probe_values", "probe_chance", "probe_ceiling",
           "bootstrap_probes", "similarity_probes", "retrieval_mrr", "qa_structure",
           "mrr_chance", "task_accuracy", "check_weights", "lee_document_ids"]

#: probe names (:func:`probe_values`), in table order
PROBE_KEYS = ("simlex999", "wordsim353", "lee_pearson", "lee_spearman", "retrieval_mrr")
#: the item set and statistic of each probe
_PROBE_ITEMS = {"simlex999": ("simlex999", "spearman"), "wordsim353": ("wordsim353", "spearman"),
                "lee_pearson": ("lee", "pearson"), "lee_spearman": ("lee", "spearman"),
                "retrieval_mrr": ("retrieval", "mean")}

_ITEMS = weakref.WeakKeyDictionary()  # BertWeights -> {key: item arrays}


def check_weights(weights, name: str = "weights") -> None:
    """ValueError naming ``name`` unless it is a BertWeights."""
    if not isinstance(weights, BertWeights):
        raise ValueError(f"{name} must be a BertWeights (realmodel.load_minilm(), "
                         f"merge_lora(...)), got {type(weights).__name__}")


@functools.lru_cache(maxsize=1)
def _tokenizer():
    return load_tokenizer()


def _readonly(*arrays):
    for a in arrays:
        a.setflags(write=False)
    return arrays


@functools.lru_cache(maxsize=None)
def _word_pair_task(name: str):
    """(token ids of the distinct words, first / second word's row per pair, scores)."""
    pairs, scores = {"simlex999": data.simlex999, "wordsim353": data.wordsim353}[name]()
    words = sorted({w for pair in pairs for w in pair})
    row = {w: i for i, w in enumerate(words)}
    first = np.array([row[a] for a, _ in pairs])
    second = np.array([row[b] for _, b in pairs])
    return (tuple(encode_ids(_tokenizer(), words)),) + _readonly(first, second, scores)


@functools.lru_cache(maxsize=1)
def _lee_task():
    documents, similarity = data.lee_corpus()
    upper = np.triu_indices(len(documents), k=1)
    return (tuple(encode_ids(_tokenizer(), documents)),) + _readonly(*upper,
                                                                    similarity[upper])


@functools.lru_cache(maxsize=1)
def _chatterbot() -> tuple:
    return tuple(data.chatterbot_pairs("english"))


@functools.lru_cache(maxsize=None)
def _qa_task(n_pairs):
    """(token ids of the distinct texts, question row and true candidate per pair, candidate
    rows): texts are identified by their token ids (uncased WordPiece)."""
    triples = _chatterbot()[:n_pairs]
    tok = _tokenizer()
    q_ids = encode_ids(tok, [q for _, q, _ in triples])
    a_ids = encode_ids(tok, [a for _, _, a in triples])
    texts, row = [], {}

    def index(ids):
        key = tuple(ids.tolist())
        if key not in row:
            row[key] = len(texts)
            texts.append(ids)
        return row[key]

    questions = np.array([index(ids) for ids in q_ids])
    answers = np.array([index(ids) for ids in a_ids])
    candidates, truth = np.unique(answers, return_inverse=True)
    return (tuple(texts),) + _readonly(questions, truth, candidates)


def lee_document_ids() -> tuple:
    """Token ids of the 50 Lee documents (the document-similarity probe's texts)."""
    return _lee_task()[0]


def _check_pairs(n_pairs):
    total = len(_chatterbot())
    if n_pairs is None:
        return None
    if (isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer))
            or not 2 <= n_pairs <= total):
        raise ValueError(f"n_pairs must be an integer in [2, {total}] or None (all), got "
                         f"{n_pairs!r}")
    return int(n_pairs)


def _cached(weights, key, compute):
    check_weights(weights)
    store = _ITEMS.setdefault(weights, {})
    if key not in store:
        store[key] = compute()
    return store[key]


def _similarity_items(weights) -> dict:
    def compute():
        out = {}
        for name in ("simlex999", "wordsim353"):
            ids, first, second, scores = _word_pair_task(name)
            e = encode(weights, ids)
            out[name] = {"model": np.einsum("ij,ij->i", e[first], e[second]), "human": scores}
        ids, i, j, human = _lee_task()
        e = encode(weights, ids)
        out["lee"] = {"model": np.einsum("ij,ij->i", e[i], e[j]), "human": human}
        return out

    return _cached(weights, "similarity", compute)


def _retrieval_items(weights, n_pairs) -> dict:
    def compute():
        texts, questions, truth, candidates = _qa_task(n_pairs)
        e = encode(weights, texts)
        cos = e[questions] @ e[candidates].T
        right = cos[np.arange(len(questions)), truth]
        ranks = 1 + np.sum(cos > right[:, None], axis=1)
        return {"reciprocal_rank": 1.0 / ranks}

    return _cached(weights, ("retrieval", n_pairs), compute)


def probe_items(weights, n_pairs=None) -> dict:
    """Per-item data of every probe: ``{"simlex999" | "wordsim353" | "lee": {"model": cosines,
    "human": scores}, "retrieval": {"reciprocal_rank": 1 / rank per query}}`` (arrays; the
    first ``n_pairs`` question-answer pairs, all 2306 by default). Cached per weights object."""
    n_pairs = _check_pairs(n_pairs)
    return {**_similarity_items(weights), "retrieval": _retrieval_items(weights, n_pairs)}


def probe_values(items, idx=None) -> dict:
    """Every probe of :data:`PROBE_KEYS` from :func:`probe_items`, on all items or on the item
    indices ``idx`` ({item set: int array}, e.g. a bootstrap resample)."""
    out = {}
    for probe, (key, stat) in _PROBE_ITEMS.items():
        out[probe] = _statistic(items[key], stat, None if idx is None else idx[key])
    return out


def _statistic(item, stat, idx):
    if stat == "mean":
        rr = item["reciprocal_rank"]
        return float(np.mean(rr if idx is None else rr[idx]))
    x, y = item["model"], item["human"]
    if idx is not None:
        x, y = x[idx], y[idx]
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # a constant resample has no correlation
        return 0.0
    return float((spearmanr if stat == "spearman" else pearsonr)(x, y).statistic)


def mrr_chance(m: int) -> float:
    """Expected reciprocal rank of the one right answer among m candidates in a uniform random
    order: H_m / m."""
    m = check_integer(m, "m", low=1)
    return float(np.sum(1.0 / np.arange(1, m + 1)) / m)


def qa_structure(n_pairs=None) -> dict:
    """The retrieval probe's queries: ``{"queries", "candidates", "chance" (H_m / m),
    "ceiling", "multi_answer_queries"}``. A question text that occurs with k > 1 different
    answers gives k queries (``multi_answer_queries`` counts them) with one embedding; the
    ceiling is the best tie-free MRR, ranking each such question's answers 1, ..., k with the
    answers shared by more of its queries first."""
    n_pairs = _check_pairs(n_pairs)
    _, questions, truth, candidates = _qa_task(n_pairs)
    best, multi = 0.0, 0
    for q in np.unique(questions):
        answers, counts = np.unique(truth[questions == q], return_counts=True)
        counts = np.sort(counts)[::-1]
        best += float(np.sum(counts / np.arange(1, counts.size + 1)))
        if answers.size > 1:
            multi += int(counts.sum())
    return {"queries": int(questions.size), "candidates": int(candidates.size),
            "chance": mrr_chance(int(candidates.size)), "ceiling": best / questions.size,
            "multi_answer_queries": multi}


def probe_chance(n_pairs=None) -> dict:
    """Chance level of every probe (module docstring)."""
    return {p: (qa_structure(n_pairs)["chance"] if p == "retrieval_mrr" else 0.0)
            for p in PROBE_KEYS}


def probe_ceiling(n_pairs=None) -> dict:
    """Ceiling of every probe (module docstring)."""
    return {p: (qa_structure(n_pairs)["ceiling"] if p == "retrieval_mrr" else 1.0)
            for p in PROBE_KEYS}


def bootstrap_probes(items_list, n_boot: int = 1000, level: float = 0.95, seed=0,
                     n_pairs=None) -> dict:
    """Bootstrap interval of every probe over items and replicates
    (:func:`realmodel.stats.bootstrap_interval`, pairs resampled per item set and shared by
    the probes of one set), with its chance level and ceiling.

    Parameters
    ----------
    items_list : list of :func:`probe_items` results
        One per replicate (training seed or control draw), all for the same ``n_pairs``.

    Returns
    -------
    dict
        ``{probe: {"mean", "lo", "hi", "chance", "ceiling"}}``.
    """
    if not isinstance(items_list, (list, tuple)) or not items_list:
        raise ValueError("items_list must be a non-empty list of probe_items results")
    chance, ceiling = probe_chance(n_pairs), probe_ceiling(n_pairs)
    out = {}
    for probe, (key, stat) in _PROBE_ITEMS.items():
        n = len(next(iter(items_list[0][key].values())))
        ci = bootstrap_interval(lambda r, idx: _statistic(items_list[r][key], stat, idx), n,
                                n_replicates=len(items_list), n_boot=n_boot, level=level,
                                seed=seed)
        out[probe] = {**ci, "chance": chance[probe], "ceiling": ceiling[probe]}
    return out


def similarity_probes(weights) -> dict:
    """Word and document similarity against human scores (module docstring):
    ``{"simlex999": rho, "wordsim353": rho, "lee_pearson": r, "lee_spearman": rho}`` with
    ``scipy.stats.spearmanr`` / ``pearsonr`` on all pairs. Cached per weights object."""
    items = _similarity_items(weights)
    return {p: _statistic(items[_PROBE_ITEMS[p][0]], _PROBE_ITEMS[p][1], None)
            for p in PROBE_KEYS if p != "retrieval_mrr"}


def retrieval_mrr(weights, n_pairs=None) -> float:
    """Mean reciprocal rank of question -> answer retrieval on chatterbot-corpus (English).

    The first ``n_pairs`` (question, answer) pairs of :func:`realmodel.data.chatterbot_pairs`
    (all 2306 by default). Candidates are the distinct answers; for question i the candidates
    are ranked by cosine with the question and

    .. math::

        \\mathrm{MRR} = \\frac{1}{n} \\sum_{i=1}^{n} \\frac{1}{\\mathrm{rank}_i}, \\qquad
        \\mathrm{rank}_i = 1 + \\#\\{c : \\cos(q_i, c) > \\cos(q_i, a_i)\\}.

    Answers are identified by their token ids (the tokenizer is uncased), so when several
    questions share an identical answer that answer is one candidate, correct for each of
    them. A question that occurs with different answers is a separate query for each, and only
    that pair's answer counts as correct (so the ceiling is below 1, :func:`qa_structure`).
    Ties in cosine with a different text count in the question's favour (strict inequality).
    Chance level (random order) is :func:`mrr_chance` of the number of candidates.
    """
    n_pairs = _check_pairs(n_pairs)
    return _statistic(_retrieval_items(weights, n_pairs), "mean", None)


def task_accuracy(weights, train_ids, train_labels, held_ids, held_labels) -> dict:
    """Held-out accuracy of the nearest class centroid (by cosine) of the training sentences'
    embeddings: did the fine-tuning learn its task?

    Returns
    -------
    dict
        ``{"accuracy": float, "correct": [0/1 per held-out sentence], "chance": 1 / k (the
        share of the most frequent held-out label), "ceiling": 1.0}``.
    """
    check_weights(weights)
    train_labels, held_labels = np.asarray(train_labels), np.asarray(held_labels)
    if train_labels.shape != (len(train_ids),) or held_labels.shape != (len(held_ids),):
        raise ValueError("train_labels and held_labels must have one label per sentence")
    classes = np.unique(train_labels)
    if classes.size < 2 or not np.isin(held_labels, classes).all():
        raise ValueError("need at least 2 training labels, and every held-out label among them")
    e_train, e_held = encode(weights, list(train_ids)), encode(weights, list(held_ids))
    centroids = np.stack([e_train[train_labels == c].mean(axis=0) for c in classes])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    predicted = classes[np.argmax(e_held @ centroids.T, axis=1)]
    correct = (predicted == held_labels).astype(float)
    share = np.max(np.unique(held_labels, return_counts=True)[1]) / held_labels.size
    return {"accuracy": float(correct.mean()), "correct": correct.tolist(),
            "chance": float(share), "ceiling": 1.0}
