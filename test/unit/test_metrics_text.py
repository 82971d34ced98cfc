"""ScanQA/SQA3D answer normalisation, EM and EM-R (the LEO / Chat-Scene definitions)."""
from __future__ import annotations

import pytest

from scene_llm_ros.data.annotations import read_scanqa
from scene_llm_ros.metrics.text import (
    answer_match,
    clean_answer,
    clean_prediction,
    sqa3d_question_type,
)


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("  The Brown  Chair ", "brown chair"),
    ("2 chairs", "two chairs"),
    ("10", "ten"),
    ("23 books", "twenty-three books"),
    ("24 books", "24 books"),
    ("none", "zero"),
    ("on the letf of tehre", "on left of there"),
    ("tv stand", "TV stand"),
    ("mat2 on floor", "mat on floor"),
    ("an old desk, a lamp", "old desk, lamp"),
    ("walk backwards", "walk backward"),
    ("5 o' clock", "five o'clock"),
    ("brown?!", "brown"),
    ("café", "caf"),
])
def test_clean_answer(raw, cleaned):
    assert clean_answer(raw) == cleaned


def test_clean_prediction_drops_one_final_period_first():
    # Without it the space before the period would survive cleaning.
    assert clean_answer("chair .") == "chair "
    assert clean_prediction("chair .") == "chair"
    assert clean_prediction("Brown.") == "brown"


def test_answer_match_em_and_refined():
    assert answer_match("brown", ["white", "brown"]) == (1.0, 1.0)
    assert answer_match("brown", ["dark brown", "white"]) == (0.0, 1.0)
    assert answer_match("dark brown chair", ["brown chair"]) == (0.0, 1.0)
    # Whitespace is ignored by the refined rule only.
    assert answer_match("night stand", ["nightstand"]) == (0.0, 1.0)
    assert answer_match("black", ["white", "brown"]) == (0.0, 0.0)
    # The published rule: an empty answer is a substring of every reference.
    assert answer_match("", ["white"]) == (0.0, 1.0)
    with pytest.raises(ValueError, match="no reference answers"):
        answer_match("brown", [])


def test_sqa3d_question_types():
    assert sqa3d_question_type(" What is in front of me?") == "what"
    assert sqa3d_question_type("Is the door open?") == "is"
    assert sqa3d_question_type("How many chairs?") == "how"
    assert sqa3d_question_type("Can I sit?") == "can"
    assert sqa3d_question_type("Which way?") == "which"
    assert sqa3d_question_type("Where is the sink?") == "others"


def test_real_scanqa_answers_match_themselves(shared_data):
    records = read_scanqa(shared_data / "scanqa" / "ScanQA_v1.0_val.json")
    for record in records:
        references = [clean_answer(a) for a in record.answers]
        for answer in record.answers:
            assert answer_match(clean_prediction(answer), references).em == 1.0, answer
