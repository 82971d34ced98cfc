"""Instruction phrasings and answer formats per task.

Phrasing 0 of every task is the plain request a robot user sends through ``AskScene`` (the
question, the description), and offline evaluation uses it, except for ScanRefer, which is
asked for one object (:data:`GROUND_REQUEST`, as the replay evaluation asks it); the others
add variety in training. The task instruction itself comes from the model's prompt builder
(:data:`scene_llm_ros.model.processing_scene_llm.TASK_INSTRUCTIONS`), so prompts stay
identical to inference.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence

from scene_llm_ros.evaluation.questions import SINGLE_OBJECT_REQUEST
from scene_llm_ros.model import GROUND_TOKEN, POINT_TOKEN

QA_PHRASINGS = ("{question}", "{question} Answer in a few words.", "Please answer: {question}")
GROUND_PHRASINGS = ("{description}", SINGLE_OBJECT_REQUEST, "Where is {description}?",
                    "Locate the object described here: {description}.")
#: The phrasing ScanRefer items are asked with outside training.
GROUND_REQUEST = GROUND_PHRASINGS.index(SINGLE_OBJECT_REQUEST)
MULTI_GROUND_PHRASINGS = ("{description}", "Find every object that matches: {description}.",
                          "Which objects fit this description? {description}.")
CAPTION_PHRASINGS = ("Describe the object at the marked point.",
                     f"What is at {POINT_TOKEN}? Describe it.",
                     "Tell me about the object I pointed at.")
SCENE_PHRASINGS = ("Describe the scene.", "What is in this room?",
                   "List the objects you can see.")
#: The answer of a grounding request that matches no object (Multi3DRefer zero-target).
NO_OBJECT_ANSWER = "none"

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                 "nine", "ten", "eleven", "twelve")
_IRREGULAR_PLURALS = {"shelf": "shelves", "person": "people", "bookshelf": "bookshelves"}


def choose(options: Sequence[str], *parts: object) -> int:
    """A deterministic index into ``options`` from ``parts`` (seed, source, record, repeat).

    A hash rather than a random generator, so the choice does not depend on the order in
    which examples are built or on any RNG state (resume needs no extra state).
    """
    text = ":".join(str(part) for part in parts)
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % len(options)


def object_name(raw: str) -> str:
    """ScanRefer's ``office_chair`` as ``office chair``."""
    return raw.replace("_", " ").strip()


def grounding_answer(names: Sequence[str]) -> str:
    """``chair <ground>, table <ground>``: one ``<ground>`` after each referred object."""
    if not names:
        return NO_OBJECT_ANSWER
    return ", ".join(f"{object_name(name)} {GROUND_TOKEN}" for name in names)


def grounded_caption(description: str, name: str) -> tuple[str, bool]:
    """The caption with ``<ground>`` after the first mention of the object's name.

    Decoding removes ``<ground>`` with its leading space, so the answer text the metrics see
    is exactly the reference caption.

    :return: (caption, whether a ``<ground>`` was placed).
    """
    pattern = re.compile(rf"\b{re.escape(object_name(name))}\b", re.IGNORECASE)
    match = pattern.search(description)
    if match is None:
        return description.strip(), False
    end = match.end()
    return f"{description[:end]} {GROUND_TOKEN}{description[end:]}".strip(), True


def _plural(name: str) -> str:
    last = name.split(" ")[-1]
    if last in _IRREGULAR_PLURALS:
        return name[: -len(last)] + _IRREGULAR_PLURALS[last]
    if re.search(r"(s|x|z|ch|sh)$", last):
        return name + "es"
    if re.search(r"[^aeiou]y$", last):
        return name[:-1] + "ies"
    return name + "s"


def count_phrase(count: int, name: str) -> str:
    """``a chair``, ``an armchair``, ``three chairs``."""
    name = object_name(name)
    if count == 1:
        return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"
    word = _NUMBER_WORDS[count] if count < len(_NUMBER_WORDS) else str(count)
    return f"{word} {_plural(name)}"


def scene_caption(labels: Sequence[str]) -> str:
    """``the room has two chairs, a desk and a bed.``: objects by count, then name."""
    counts = Counter(object_name(label) for label in labels)
    if not counts:
        return "the room is empty."
    parts = [count_phrase(n, name) for name, n in sorted(counts.items(),
                                                         key=lambda item: (-item[1], item[0]))]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"the room has {listed}."
