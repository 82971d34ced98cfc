"""Answer normalisation and exact-match scores of 3D question answering (ScanQA, SQA3D).

The definitions are those of LEO (embodied-generalist) and Chat-Scene, which report ScanQA and
SQA3D "EM@1" and "EM-R" (refined exact match) this way:

* both the prediction and every reference go through :func:`clean_answer`;
* EM is 1 when the cleaned prediction equals one cleaned reference;
* EM-R is also 1 when, with all whitespace removed, the prediction is a substring of a
  reference or a reference is a substring of the prediction. An empty cleaned prediction is a
  substring of everything, so it scores EM-R 1: that is the published rule, kept as is.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

# Applied in this order; each entry is (pattern, replacement). The order matters: typos are
# fixed before numbers become words, and articles go last. The published function has three
# more steps that can never fire here (". " after double spaces, which are already collapsed;
# "ç" and "’", which the character filter has already removed), so they are left out.
_SPACE_RULES = [
    (re.compile(r" +$"), ""),
    (re.compile(r"^ +"), ""),
    (re.compile(r" {2,}"), " "),
    # Keeps ASCII letters, digits, comma, apostrophe, whitespace, hyphen and colon.
    (re.compile(r"[^a-zA-Z0-9,'\s\-:]+"), ""),
]
_TYPOS = {"letf": "left", "let": "left", "tehre": "there", "rigth": "right", "rght": "right",
          "behine": "behind", "tv": "TV", "chai": "chair", "wasing": "washing",
          "waslked": "walked", "oclock": "o'clock"}
_NUMBER_WORDS = {"0": "zero", "none": "zero", "1": "one", "2": "two", "3": "three", "4": "four",
                 "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten",
                 "11": "eleven", "12": "twelve", "13": "thirteen", "14": "fourteen",
                 "15": "fifteen", "16": "sixteen", "17": "seventeen", "18": "eighteen",
                 "19": "nineteen", "20": "twenty", "23": "twenty-three"}
_TYPO_PATTERN = re.compile(r"\b(" + "|".join(_TYPOS) + r")\b")
_SPLIT_OCLOCK = re.compile(r"\bo'[ ]+clock\b")
_NUMBER_PATTERN = re.compile(r"\b(none|[0-9]+)\b")
_FINAL_RULES = [
    (re.compile(r"\b([a-zA-Z]+)([0-9])\b"), r"\g<1>"),  # "mat2" -> "mat"
    (re.compile(r"\ba\b ([a-zA-Z]+)"), r"\g<1>"),
    (re.compile(r"\ban\b ([a-zA-Z]+)"), r"\g<1>"),
    (re.compile(r"\bthe\b ([a-zA-Z]+)"), r"\g<1>"),
    (re.compile(r"\bbackwards\b"), "backward"),
]


def clean_answer(text: str) -> str:
    """Normalise an answer the way LEO and Chat-Scene do before EM, EM-R and n-gram scores.

    Lower-cases, trims spaces, removes characters other than ASCII letters, digits, whitespace and
    ``, ' - :``, fixes the typos common in ScanQA answers, writes the numbers 0-20 and 23 (and
    "none") as words, drops a digit glued to a word, and drops the articles a, an, the. The
    published function also maps "tv" to upper-case "TV" after lower-casing; that is kept, since
    exact match compares cleaned strings on both sides.
    """
    text = text.lower()
    for pattern, replacement in _SPACE_RULES:
        text = pattern.sub(replacement, text)
    text = _TYPO_PATTERN.sub(lambda match: _TYPOS[match.group(1)], text)
    text = _SPLIT_OCLOCK.sub("o'clock", text)
    text = _NUMBER_PATTERN.sub(lambda match: _NUMBER_WORDS.get(match.group(1), match.group(1)),
                               text)
    for pattern, replacement in _FINAL_RULES:
        text = pattern.sub(replacement, text)
    return text


def clean_prediction(text: str) -> str:
    """:func:`clean_answer` for a model's answer, first dropping one final full stop.

    Chat-Scene strips the period before cleaning, so "chair ." does not keep a trailing space.
    """
    if len(text) > 1 and text.endswith("."):
        text = text[:-1]
    return clean_answer(text)


class AnswerMatch(NamedTuple):
    """Exact match (EM) and refined exact match (EM-R) of one cleaned answer."""

    em: float
    em_r: float


def _squash(text: str) -> str:
    return "".join(text.split())


def answer_match(prediction: str, references: Sequence[str]) -> AnswerMatch:
    """EM and EM-R of an already cleaned prediction against cleaned references.

    :raises ValueError: when ``references`` is empty (nothing to match against).
    """
    if len(references) == 0:
        raise ValueError(f"no reference answers to match {prediction!r} against")
    if prediction in references:
        return AnswerMatch(em=1.0, em_r=1.0)
    squashed = _squash(prediction)
    for reference in references:
        squashed_reference = _squash(reference)
        if squashed in squashed_reference or squashed_reference in squashed:
            return AnswerMatch(em=0.0, em_r=1.0)
    return AnswerMatch(em=0.0, em_r=0.0)


#: SQA3D question types in LEO's order; "others" takes every question not starting with one.
SQA3D_QUESTION_TYPES = ("what", "is", "how", "can", "which", "others")


def sqa3d_question_type(question: str) -> str:
    """SQA3D question type by prefix, as LEO groups its EM: what/is/how/can/which/others.

    The test is a plain prefix of the left-stripped, lower-cased question (so "Isn't" is "is").
    """
    lowered = question.lstrip().lower()
    for prefix in SQA3D_QUESTION_TYPES[:-1]:
        if lowered.startswith(prefix):
            return prefix
    return "others"


_COUNTING = re.compile(r"\b(how many|number of)\b")


def is_counting_question(question: str) -> bool:
    """Whether a question asks for a number of things ("How many chairs...", "What is the
    number of..."): the questions counting accuracy is taken over."""
    return _COUNTING.search(question.lower()) is not None
