"""The native PTB tokeniser against CoreNLP's PTBTokenizer as pycocoevalcap runs it."""
from __future__ import annotations

import shutil

import pytest

from scene_llm_ros.data.annotations import read_scanqa
from scene_llm_ros.metrics.tokenize import ptb_tokenize, ptb_tokens

# Expected outputs were produced by pycocoevalcap's PTBTokenizer (CoreNLP 3.4.1, -lowerCase),
# followed by its punctuation filter.
JAVA_CHECKED = [
    ("What's to the right of the bed?", "what 's to the right of the bed"),
    ("What’s to the right of bed?", "what 's to the right of bed"),
    ("How many chairs doesn't have a wheel?", "how many chairs does n't have a wheel"),
    ("I cannot go, gonna wanna gotta", "i can not go gon na wan na got ta"),
    ("they'll we've he'd I'm won't can't", "they 'll we 've he 'd i 'm wo n't ca n't"),
    ("black (dark) chair [x] {y}", "black -lrb- dark -rrb- chair -lsb- x -rsb- -lcb- y -rcb-"),
    ("3.5 1,000 $5 50% a&b o'clock '90s 6ft #1",
     "3.5 1,000 $ 5 50 % a & b o'clock '90s 6ft # 1"),
    ("left/right/back/front of room", "left/right/back / front of room"),
    ("left-right/up-down-x-y/z", "left-right/up-down-x y/z"),
    ("U.S. e.g. etc. mr. smith, approx. the answer is no.",
     "u.s. e.g. etc. mr. smith approx the answer is no"),
    ("no. 5 and no.5", "no. 5 and no. 5"),
    ("Where is the tan. metal frame chair?", "where is the tan metal frame chair"),
    ("the table.It is 10:30, 2,3 and 1/2/3/4", "the table.it is 10:30 2,3 and 1/2/3 / 4"),
    ('a cabinet with the word "safe" on it', "a cabinet with the word safe on it"),
    ("students' 'quoted' !? ?! ... -- a---b word- -word",
     "students quoted !? ?! a b word word"),
    ("http://example.com foo@bar.com @home", "http://example.com foo@bar.com @home"),
    ("“quoted” ‘single’ café naïve", "quoted single café naïve"),
    ("5 1/2 cups — 10 3/4 – a", "5\u00a01/2 cups 10\u00a03/4 a"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), JAVA_CHECKED)
def test_matches_recorded_corenlp_output(text, expected):
    assert ptb_tokenize(text) == expected


def test_tokens_are_a_list_without_punctuation():
    assert ptb_tokens("On the left, by the door.") == ["on", "the", "left", "by", "the", "door"]


@pytest.mark.skipif(shutil.which("java") is None, reason="no Java runtime for PTBTokenizer")
def test_same_tokens_as_ptbtokenizer_on_real_scanqa(shared_data):
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    records = read_scanqa(shared_data / "scanqa" / "ScanQA_v1.0_val.json")
    texts = [a for r in records for a in r.answers] + [r.question for r in records]
    assert len(texts) == 14077
    java = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(texts)})
    mismatches = [(t, java[i][0], ptb_tokenize(t)) for i, t in enumerate(texts)
                  if ptb_tokenize(t) != java[i][0]]
    assert mismatches == []
