"""BLEU-1..4, ROUGE-L and CIDEr-D computed natively, numerically equal to pycocoevalcap 1.2.

Inputs are tokenised strings (tokens joined by single spaces, e.g. from
:func:`scene_llm_ros.metrics.tokenize.ptb_tokenize`): one prediction and one or more references
per item. Each function returns the corpus score and one score per item, as pycocoevalcap's
``compute_score`` does, and follows its definitions exactly:

* BLEU: clipped n-gram precisions and the brevity penalty from the *closest* reference length
  (ties to the shorter reference), with pycocoevalcap's smoothing constants; the corpus score
  pools the counts of all items, the per-item score uses the item's own counts.
* ROUGE-L: LCS-based F-measure with beta 1.2, taking the best precision and best recall over the
  references separately; the corpus score is the mean over items.
* CIDEr-D: TF-IDF n-gram vectors (n = 1..4) with document frequencies from the references of the
  evaluated set, clipped cosine similarity, a Gaussian length penalty (sigma 6), averaged over
  references and n, times 10; the corpus score is the mean over items.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_N = 4
ROUGE_BETA = 1.2
CIDER_SIGMA = 6.0
# pycocoevalcap's guards against zero counts; they shift scores by ~1e-9, so they are kept.
_BLEU_SMALL = 1e-9
_BLEU_TINY = 1e-15


@dataclass(frozen=True)
class CorpusScore:
    """A corpus-level score and the per-item scores, in input order."""

    value: float
    per_item: list[float]


def check_scoring_input(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    """Check the shape pycocoevalcap asserts: one prediction and >= 1 reference per item.

    :raises TypeError: when ``predictions`` is a single string.
    :raises ValueError: on a length mismatch, no items, or an item without references.
    """
    if isinstance(predictions, str):
        raise TypeError("predictions must be a sequence of strings, not one string")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if len(predictions) == 0:
        raise ValueError("nothing to score: no predictions")
    for index, refs in enumerate(references):
        if isinstance(refs, str) or len(refs) == 0:
            raise ValueError(f"item {index} needs a non-empty list of references, got {refs!r}")


def ngram_counts(tokens: Sequence[str], max_n: int = MAX_N) -> Counter:
    """Counts of every 1..``max_n``-gram (as token tuples) in ``tokens``."""
    counts: Counter = Counter()
    for n in range(1, max_n + 1):
        counts.update(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return counts


@dataclass(frozen=True)
class _BleuStats:
    hypothesis_length: int
    reference_length: int  # closest reference length
    guesses: tuple[int, ...]
    correct: tuple[int, ...]


def _bleu_stats(prediction: str, references: Sequence[str]) -> _BleuStats:
    tokens = prediction.split()
    clip: Counter = Counter()
    lengths = []
    for reference in references:
        ref_tokens = reference.split()
        lengths.append(len(ref_tokens))
        clip |= ngram_counts(ref_tokens)  # | keeps the maximum count per n-gram
    length = len(tokens)
    closest = min(lengths, key=lambda ref_length: (abs(ref_length - length), ref_length))
    correct = [0] * MAX_N
    for ngram, count in ngram_counts(tokens).items():
        correct[len(ngram) - 1] += min(count, clip[ngram])
    guesses = tuple(max(0, length - n + 1) for n in range(1, MAX_N + 1))
    return _BleuStats(length, closest, guesses, tuple(correct))


def _bleu_from_counts(hypothesis_length: float, reference_length: float,
                      guesses: Sequence[float], correct: Sequence[float]) -> list[float]:
    scores = []
    product = 1.0
    for n in range(MAX_N):
        product *= (correct[n] + _BLEU_TINY) / (guesses[n] + _BLEU_SMALL)
        scores.append(product ** (1.0 / (n + 1)))
    ratio = (hypothesis_length + _BLEU_TINY) / (reference_length + _BLEU_SMALL)
    if ratio < 1:
        penalty = math.exp(1 - 1 / ratio)
        scores = [score * penalty for score in scores]
    return scores


def bleu(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[CorpusScore]:
    """BLEU-1..4 (pycocoevalcap ``Bleu(4)``, option "closest").

    :param predictions: one tokenised prediction per item.
    :param references: the tokenised references of each item (at least one).
    :return: four :class:`CorpusScore`, for BLEU-1 to BLEU-4.
    :raises ValueError: on a length mismatch or an item without references.
    """
    check_scoring_input(predictions, references)
    stats = [_bleu_stats(p, refs) for p, refs in zip(predictions, references, strict=True)]
    per_item = [_bleu_from_counts(s.hypothesis_length, s.reference_length, s.guesses, s.correct)
                for s in stats]
    corpus = _bleu_from_counts(
        sum(s.hypothesis_length for s in stats), sum(s.reference_length for s in stats),
        [sum(s.guesses[n] for s in stats) for n in range(MAX_N)],
        [sum(s.correct[n] for s in stats) for n in range(MAX_N)])
    return [CorpusScore(corpus[n], [scores[n] for scores in per_item]) for n in range(MAX_N)]


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l_item(prediction: str, references: Sequence[str]) -> float:
    """ROUGE-L F-measure (beta 1.2) of one prediction against its references."""
    # pycocoevalcap splits on single spaces, so an empty string is one empty token.
    tokens = prediction.split(" ")
    best_precision = best_recall = 0.0
    for reference in references:
        ref_tokens = reference.split(" ")
        common = _lcs_length(ref_tokens, tokens)
        best_precision = max(best_precision, common / len(tokens))
        best_recall = max(best_recall, common / len(ref_tokens))
    if best_precision == 0 or best_recall == 0:
        return 0.0
    beta2 = ROUGE_BETA ** 2
    return (1 + beta2) * best_precision * best_recall / (best_recall + beta2 * best_precision)


def rouge_l(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> CorpusScore:
    """ROUGE-L (pycocoevalcap ``Rouge``): mean of :func:`rouge_l_item` over items.

    :raises ValueError: on a length mismatch or an item without references.
    """
    check_scoring_input(predictions, references)
    scores = [rouge_l_item(p, refs) for p, refs in zip(predictions, references, strict=True)]
    return CorpusScore(float(np.mean(scores)), scores)


@dataclass(frozen=True)
class _TfIdf:
    weights: list[dict[tuple[str, ...], float]]  # one dict per n
    norms: list[float]
    length: int  # pycocoevalcap's length term: the number of bigrams


def _tfidf(counts: Counter, document_frequency: Counter, log_documents: float) -> _TfIdf:
    weights: list[dict[tuple[str, ...], float]] = [{} for _ in range(MAX_N)]
    squares = [0.0] * MAX_N
    bigrams = 0
    for ngram, count in counts.items():
        n = len(ngram) - 1
        weight = count * (log_documents - math.log(max(1.0, document_frequency[ngram])))
        weights[n][ngram] = weight
        squares[n] += weight * weight
        if n == 1:
            bigrams += count
    return _TfIdf(weights, [math.sqrt(s) for s in squares], bigrams)


def _cider_similarity(hypothesis: _TfIdf, reference: _TfIdf) -> np.ndarray:
    delta = float(hypothesis.length - reference.length)
    penalty = math.exp(-(delta ** 2) / (2 * CIDER_SIGMA ** 2))
    values = np.zeros(MAX_N)
    for n in range(MAX_N):
        ref_weights = reference.weights[n]
        total = 0.0
        for ngram, weight in hypothesis.weights[n].items():
            ref_weight = ref_weights.get(ngram, 0.0)
            total += min(weight, ref_weight) * ref_weight  # CIDEr-D clips to the reference
        if hypothesis.norms[n] != 0 and reference.norms[n] != 0:
            total /= hypothesis.norms[n] * reference.norms[n]
        values[n] = total * penalty
    return values


def cider_d(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> CorpusScore:
    """CIDEr-D (pycocoevalcap ``Cider``: n = 1..4, sigma 6, clipping, length penalty, x10).

    Document frequencies come from the references of these items, so a score depends on the
    whole evaluated set: score all items in one call.

    :raises ValueError: on a length mismatch or an item without references.
    """
    check_scoring_input(predictions, references)
    ref_counts = [[ngram_counts(r.split()) for r in refs] for refs in references]
    document_frequency: Counter = Counter()
    for counts in ref_counts:
        document_frequency.update(set().union(*counts))
    log_documents = math.log(float(len(references)))
    scores = []
    for prediction, counts in zip(predictions, ref_counts, strict=True):
        hypothesis = _tfidf(ngram_counts(prediction.split()), document_frequency, log_documents)
        total = np.zeros(MAX_N)
        for ref in counts:
            total += _cider_similarity(hypothesis, _tfidf(ref, document_frequency, log_documents))
        scores.append(float(np.mean(total)) / len(counts) * 10.0)
    return CorpusScore(float(np.mean(scores)), scores)
