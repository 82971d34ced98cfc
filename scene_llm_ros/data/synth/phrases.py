"""Wording of facts: noun phrases and relation phrases with synonyms and templates."""
from __future__ import annotations

import re

import numpy as np

from scene_llm_ros.data.synth.assembly import SynthObject
from scene_llm_ros.data.synth.library import CATEGORIES
from scene_llm_ros.data.synth.relations import Fact, SceneFacts

_RELATION_TEMPLATES = {
    "closest": ("closest to the {a}", "nearest to the {a}", "that is closest to the {a}"),
    "farthest": ("farthest from the {a}", "furthest away from the {a}",
                 "that is farthest from the {a}"),
    "on": ("on the {a}", "on top of the {a}", "sitting on the {a}"),
    "next_to": ("next to the {a}", "beside the {a}", "by the {a}", "near the {a}"),
    "left": ("to the left of the {a} when you face the {a}",
             "on the left side of the {a} as you face it",
             "left of the {a} if you are facing the {a}"),
    "right": ("to the right of the {a} when you face the {a}",
              "on the right side of the {a} as you face it",
              "right of the {a} if you are facing the {a}"),
    "front": ("in front of the {a}", "right in front of the {a}"),
    "middle": ("in the middle of the room", "in the center of the room"),
    "corner": ("in the corner of the room", "in a corner of the room"),
    "under": ("under the window", "below the window"),
}
_SIZE_WORDS = {"large": ("largest", "biggest", "large"), "small": ("smallest", "small")}
# Location answers (ScanQA "where is ...") per relation kind.
_LOCATION_TEMPLATES = {
    "on": ("on the {a}", "on top of the {a}"),
    "next_to": ("next to the {a}", "beside the {a}"),
    "front": ("in front of the {a}",),
    "middle": ("in the middle of the room", "in the center of the room"),
    "corner": ("in the corner of the room", "in the corner"),
    "under": ("under the window", "below the window"),
}


def tokenize(text: str) -> list[str]:
    """Split a description into word and punctuation tokens (ScanRefer's ``token`` field)."""
    return re.findall(r"[a-z0-9']+|[^\sa-z0-9']", text.lower())


class Wording:
    """Random but always true wording for one scene."""

    def __init__(self, facts: SceneFacts, rng: np.random.Generator) -> None:
        self.facts = facts
        self.rng = rng

    def choose(self, options) -> str:
        """One of ``options`` at random."""
        return str(options[int(self.rng.integers(len(options)))])

    def noun(self, obj: SynthObject) -> str:
        """A noun for ``obj`` that names no other label present in the scene."""
        nouns = self.facts.nouns(obj.label) or [CATEGORIES[obj.label].noun]
        return self.choose(nouns)

    def anchor(self, object_id: int) -> str:
        """The unambiguous noun of an anchor object."""
        name = self.facts.anchor_noun(self.facts.by_id[object_id])
        assert name is not None, "anchors are filtered by SceneFacts.anchors"
        return name

    def relation(self, fact: Fact) -> str:
        """Phrase of a spatial fact, e.g. ``"closest to the window"``."""
        a = self.anchor(fact.anchor) if fact.anchor is not None else ""
        return self.choose(_RELATION_TEMPLATES[fact.kind]).format(a=a)

    def location(self, fact: Fact) -> str | None:
        """Answer-style location phrase of a fact, or None when the kind has none."""
        if fact.kind not in _LOCATION_TEMPLATES:
            return None
        a = self.anchor(fact.anchor) if fact.anchor is not None else ""
        return self.choose(_LOCATION_TEMPLATES[fact.kind]).format(a=a)

    def noun_phrase(self, obj: SynthObject, chosen: list[Fact], *, article: str = "the") -> str:
        """``the [size] [colour] noun [relation] [and relation]`` from ``chosen`` facts."""
        words = [article]
        for fact in chosen:
            if fact.kind == "size":
                words.append(self.choose(_SIZE_WORDS[fact.value]))
        for fact in chosen:
            if fact.kind == "color":
                words.append(fact.value)
        words.append(self.noun(obj))
        relations = [self.relation(f) for f in chosen if f.spatial]
        if relations:
            words.append(" and ".join(relations))
        return " ".join(words)


def identify(facts: SceneFacts, target: SynthObject, rng: np.random.Generator, *,
             exclude_kinds: tuple[str, ...] = (), extra: int = 0) -> list[Fact] | None:
    """Pick facts that single ``target`` out among its class, plus ``extra`` more.

    :return: the facts in a random order that still rules out every distractor, or None if
        the true facts cannot tell the target from some distractor.
    """
    peers = {o.object_id for o in facts.same_class(target)} - {target.object_id}
    candidates = [f for f in facts.facts(target) if f.kind not in exclude_kinds]
    order = [candidates[i] for i in rng.permutation(len(candidates))]
    chosen: list[Fact] = []
    remaining = set(peers)
    # Greedy in random order, but only facts that rule out someone while distractors remain.
    for fact in sorted(order, key=lambda f: -len(f.excludes & remaining) if remaining else 0):
        if not remaining:
            break
        if fact.excludes & remaining:
            chosen.append(fact)
            remaining -= fact.excludes
    if remaining:
        return None
    spare = [f for f in order if f not in chosen and f.kind not in {c.kind for c in chosen}]
    return chosen + spare[:extra]
