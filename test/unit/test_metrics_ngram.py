"""Native BLEU / ROUGE-L / CIDEr-D against pycocoevalcap on the real ScanQA val answers."""
from __future__ import annotations

import contextlib
import io
import math
import random

import numpy as np
import pytest

from scene_llm_ros.data.annotations import read_scanqa
from scene_llm_ros.metrics import ngram
from scene_llm_ros.metrics.text import clean_answer
from scene_llm_ros.metrics.tokenize import ptb_tokenize

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def scanqa_references(shared_data):
    """Cleaned, tokenised reference answers of every ScanQA val question."""
    records = read_scanqa(shared_data / "scanqa" / "ScanQA_v1.0_val.json")
    return [[ptb_tokenize(clean_answer(a)) for a in r.answers] for r in records]


def perturb(answers: list[str], seed: int) -> list[str]:
    """Drop, swap, replace or insert one word per answer, deterministically per seed."""
    rng = random.Random(seed)
    vocabulary = sorted({word for answer in answers for word in answer.split()})
    out = []
    for answer in answers:
        words = answer.split()
        operation = rng.randrange(4)
        if operation == 0 and len(words) > 1:
            del words[rng.randrange(len(words))]
        elif operation == 1 and len(words) > 1:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        elif operation == 2 and words:
            words[rng.randrange(len(words))] = rng.choice(vocabulary)
        else:
            words.insert(rng.randrange(len(words) + 1), rng.choice(vocabulary))
        out.append(" ".join(words))
    return out


def pycocoevalcap_scores(predictions, references):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: list(refs) for i, refs in enumerate(references)}
    res = {i: [p] for i, p in enumerate(predictions)}
    with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its counts
        bleu, bleu_items = Bleu(4).compute_score(gts, res)
    rouge, rouge_items = Rouge().compute_score(gts, res)
    cider, cider_items = Cider().compute_score(gts, res)
    return bleu, bleu_items, rouge, rouge_items, cider, cider_items


def assert_agrees(predictions, references):
    bleu, bleu_items, rouge, rouge_items, cider, cider_items = pycocoevalcap_scores(
        predictions, references)
    ours = ngram.bleu(predictions, references)
    for n in range(4):
        assert ours[n].value == pytest.approx(bleu[n], abs=TOLERANCE)
        np.testing.assert_allclose(ours[n].per_item, bleu_items[n], atol=TOLERANCE, rtol=0)
    ours_rouge = ngram.rouge_l(predictions, references)
    assert ours_rouge.value == pytest.approx(rouge, abs=TOLERANCE)
    np.testing.assert_allclose(ours_rouge.per_item, rouge_items, atol=TOLERANCE, rtol=0)
    ours_cider = ngram.cider_d(predictions, references)
    assert ours_cider.value == pytest.approx(cider, abs=TOLERANCE)
    np.testing.assert_allclose(ours_cider.per_item, cider_items, atol=TOLERANCE, rtol=0)
    return ours, ours_rouge, ours_cider


def test_perfect_predictions_agree_with_pycocoevalcap(scanqa_references):
    predictions = [refs[0] for refs in scanqa_references]
    bleu, rouge, cider = assert_agrees(predictions, scanqa_references)
    assert bleu[3].value == pytest.approx(1.0, abs=1e-9)
    assert rouge.value == 1.0
    assert cider.value > 3.0


@pytest.mark.parametrize("seed", [0, 1])
def test_perturbed_predictions_agree_with_pycocoevalcap(scanqa_references, seed):
    predictions = perturb([refs[0] for refs in scanqa_references], seed)
    bleu, rouge, cider = assert_agrees(predictions, scanqa_references)
    assert 0.2 < bleu[3].value < 0.9 and 0.3 < rouge.value < 0.95 and 0.3 < cider.value < 3.0


def test_empty_and_long_predictions_agree_with_pycocoevalcap(scanqa_references):
    # Empty predictions exercise the zero-length corners (CIDEr's length term, ROUGE's split).
    predictions = ["" if i % 7 == 0 else " ".join(refs) if i % 5 == 0 else refs[-1]
                   for i, refs in enumerate(scanqa_references)]
    assert_agrees(predictions, scanqa_references)


def test_bleu_by_hand():
    # 3 of 4 unigrams and 1 of 3 bigrams match; the closest reference has 4 tokens, no penalty.
    bleu = ngram.bleu(["a brown wooden chair"], [["a brown chair here", "one chair"]])
    assert bleu[0].value == pytest.approx(3 / 4)
    assert bleu[1].value == pytest.approx(math.sqrt(3 / 4 * 1 / 3))
    # Brevity penalty exp(1 - 4/2) from the closest reference (ties go to the shorter one).
    short = ngram.bleu(["a chair"], [["a chair is here", "a big"]])
    assert short[0].value == pytest.approx(1.0)
    long_only = ngram.bleu(["a chair"], [["a chair is here"]])
    assert long_only[0].value == pytest.approx(math.exp(1 - 4 / 2))


def test_rouge_l_by_hand():
    # LCS 2 of 3 prediction tokens and of 4 reference tokens.
    precision, recall = 2 / 3, 2 / 4
    expected = (1 + 1.2 ** 2) * precision * recall / (recall + 1.2 ** 2 * precision)
    assert ngram.rouge_l_item("brown wooden chair", ["a brown big chair"]) == pytest.approx(
        expected)
    assert ngram.rouge_l_item("", ["a chair"]) == 0.0


def test_cider_uses_document_frequency_of_the_evaluated_set():
    references = [["brown chair"], ["brown table"], ["white lamp"]]
    predictions = ["brown chair", "brown table", "white lamp"]
    alone = ngram.cider_d(predictions[:1], references[:1]).value
    together = ngram.cider_d(predictions, references).per_item[0]
    # With one document every n-gram has idf log(1) - log(1) = 0.
    assert alone == 0.0
    assert together > 0.0
    wrong = ngram.cider_d(["lamp white", "brown table", "white lamp"], references).per_item[0]
    assert wrong == 0.0


@pytest.mark.parametrize("scorer", [ngram.bleu, ngram.rouge_l, ngram.cider_d])
def test_bad_input_is_rejected(scorer):
    with pytest.raises(ValueError, match="2 predictions but 1 reference lists"):
        scorer(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="item 0 needs a non-empty list of references"):
        scorer(["a"], [[]])
    with pytest.raises(ValueError, match="item 0 needs a non-empty list"):
        scorer(["a"], ["a"])
    with pytest.raises(TypeError, match="not one string"):
        scorer("a", [["a"]])
    with pytest.raises(ValueError, match="no predictions"):
        scorer([], [])
