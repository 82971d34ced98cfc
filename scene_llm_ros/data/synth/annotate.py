"""ScanRefer, Scan2Cap, Multi3DRefer and ScanQA annotations that are true for a scene."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scene_llm_ros.data.annotations import (
    Multi3DReferRecord,
    ScanQARecord,
    ScanReferRecord,
    SQA3DRecord,
)
from scene_llm_ros.data.synth.assembly import SynthObject
from scene_llm_ros.data.synth.library import CATEGORIES
from scene_llm_ros.data.synth.palette import COLOR_SYNONYMS, COLORS
from scene_llm_ros.data.synth.phrases import Wording, identify, tokenize
from scene_llm_ros.data.synth.relations import SIZE_RATIO, SceneFacts, near_gap

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                 "ten")


@dataclass
class SceneAnnotations:
    """Language annotations of one scene, as records of the official formats.

    ScanQA ``question_id`` values are ``scene9000-<n>``; the dataset writer prefixes the split
    (``train-scene9000-<n>``) as the official files do. ScanRefer records carry
    ``extra["eval_type"]`` = ``unique`` / ``multiple`` (ScanRefer's rule).
    """

    scanrefer: list[ScanReferRecord] = field(default_factory=list)
    scan2cap: list[ScanReferRecord] = field(default_factory=list)
    multi3drefer: list[Multi3DReferRecord] = field(default_factory=list)
    scanqa: list[ScanQARecord] = field(default_factory=list)
    sqa3d: list[SQA3DRecord] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Number of records per annotation type."""
        return {"scanrefer": len(self.scanrefer), "scan2cap": len(self.scan2cap),
                "multi3drefer": len(self.multi3drefer), "scanqa": len(self.scanqa),
                "sqa3d": len(self.sqa3d)}


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?")) else text + "."


class _Writer:
    def __init__(self, scene_id: str, facts: SceneFacts, rng: np.random.Generator) -> None:
        self.scene_id = scene_id
        self.facts = facts
        self.rng = rng
        self.say = Wording(facts, rng)

    # -- ScanRefer ----------------------------------------------------------------------
    def description(self, target: SynthObject) -> str | None:
        chosen = identify(self.facts, target, self.rng, extra=int(self.rng.integers(1, 3)))
        if chosen is None:
            return None
        say = self.say
        ident = [f for f in chosen if f.kind in ("color", "size")]
        rels = [f for f in chosen if f.spatial]
        noun = say.noun(target)
        style = int(self.rng.integers(4))
        if style == 0 or not rels:
            text = _sentence(say.noun_phrase(target, chosen))
        elif style == 1:
            adjectives = say.noun_phrase(target, ident, article="a")
            text = f"this is {adjectives}. it is " + " and ".join(say.relation(f) for f in rels)
        elif style == 2:
            lead = say.relation(rels[0])
            rest = say.noun_phrase(target, ident + rels[1:], article="a")
            text = f"{lead}, there is {rest}"
        else:
            np_ = say.noun_phrase(target, ident, article="the")
            text = f"{np_} is " + " and ".join(say.relation(f) for f in rels)
        text = _sentence(text)
        if self.rng.random() < 0.5 and not any(f.kind == "color" for f in chosen):
            text += f" the {noun} is {target.color}."
        return text

    def scanrefer(self, per_object: int) -> list[ScanReferRecord]:
        records = []
        for target in self.facts.objects:
            unique = self.facts.is_unique(target)
            seen: set[str] = set()
            for _ in range(per_object * 2):
                if len(seen) >= per_object:
                    break
                text = self.description(target)
                if text is None or text in seen:
                    continue
                seen.add(text)
                records.append(ScanReferRecord(
                    self.scene_id, str(target.object_id), target.label.replace(" ", "_"),
                    str(len(seen) - 1), text, tokenize(text),
                    {"eval_type": "unique" if unique else "multiple"}))
        return records

    # -- Scan2Cap -------------------------------------------------------------------------
    def caption(self, target: SynthObject) -> str:
        say = self.say
        noun = say.noun(target)
        facts = [f for f in self.facts.facts(target) if f.spatial]
        opening = say.choose(("this is a {c} {n}.", "a {c} {n}.", "there is a {c} {n}.",
                              "the {n} is {c}.")).format(c=target.color, n=noun)
        parts = [opening]
        for fact in [facts[i] for i in self.rng.permutation(len(facts))][:2]:
            parts.append(f"it is {say.relation(fact)}.")
        if target.wall is not None and CATEGORIES[target.label].mount == "wall":
            parts.append(say.choose(("it is on the wall.", "it hangs on the wall.")))
        elif target.wall is not None and len(parts) < 3:
            parts.append(say.choose(("it is against the wall.", "it stands by the wall.")))
        return " ".join(parts)

    def scan2cap(self, per_object: int) -> list[ScanReferRecord]:
        records = []
        for target in self.facts.objects:
            for k in range(per_object):
                text = self.caption(target)
                records.append(ScanReferRecord(self.scene_id, str(target.object_id),
                                               target.label.replace(" ", "_"), str(k), text,
                                               tokenize(text)))
        return records

    # -- Multi3DRefer -------------------------------------------------------------------------
    def multi3drefer(self) -> list[Multi3DReferRecord]:
        out: list[Multi3DReferRecord] = []

        def add(ids, label, text, eval_type, *, spatial=False, color=False, shape=False):
            text = _sentence(text)
            out.append(Multi3DReferRecord(self.scene_id, sorted(ids), label.replace(" ", "_"),
                                          len(out), text, eval_type, spatial, color, False, shape,
                                          tokenize(text)))

        for target in self.facts.objects:
            chosen = identify(self.facts, target, self.rng)
            if chosen is None or self.rng.random() < 0.4:
                continue
            eval_type = "st_wo_d" if self.facts.is_unique(target) else "st_w_d"
            add([target.object_id], target.label, self.say.noun_phrase(target, chosen), eval_type,
                spatial=any(f.spatial for f in chosen),
                color=any(f.kind == "color" for f in chosen),
                shape=any(f.kind == "size" for f in chosen))
        # Multiple targets: every object of a label, of a label and colour, or on a support.
        for label in self.facts.labels:
            group = self.facts.with_label(label)
            clash = any(o.label != label for o in self.facts.same_class(group[0]))
            if len(group) >= 2 and not clash:
                plural = CATEGORIES[label].plural
                add([o.object_id for o in group], label,
                    self.say.choose(("all the {p} in the room", "the {p}", "every {n} in this room"
                                     )).format(p=plural, n=CATEGORIES[label].noun), "mt")
                by_color: dict[str, list[SynthObject]] = {}
                for o in group:
                    by_color.setdefault(o.color, []).append(o)
                for color, members in sorted(by_color.items()):
                    similar = [o for o in group if o.color != color and o.color in
                               COLOR_SYNONYMS.get(color, ()) + tuple(
                                   k for k, v in COLOR_SYNONYMS.items() if color in v)]
                    if len(members) >= 2 and not similar:
                        add([o.object_id for o in members], label, f"the {color} {plural}", "mt",
                            color=True)
        for support in self.facts.objects:
            kids = self.facts.on_top(support)
            name = self.facts.anchor_noun(support)
            if len(kids) >= 2 and name and len({k.label for k in kids}) == 1:
                label = kids[0].label
                add([k.object_id for k in kids], label,
                    f"the {CATEGORIES[label].plural} on the {name}", "mt", spatial=True)
        # Zero targets: a colour no object of that label has (distractors of the class are in
        # the room: zt_w_d), or a category not in the room at all (zt_wo_d).
        for label in self.facts.labels:
            if self.rng.random() < 0.5:
                continue
            present = {o.color for o in self.facts.with_label(label)}
            present |= {s for c in present for s in COLOR_SYNONYMS.get(c, ())}
            present |= {k for k, v in COLOR_SYNONYMS.items() if present & set(v)}
            absent = [c for c in sorted(COLORS) if c not in present]
            if absent and self.facts.nouns(label):
                color = self.say.choose(absent)
                add([], label, f"the {color} {self.facts.nouns(label)[0]}", "zt_w_d", color=True)
        missing = self._absent_labels()
        anchors = [o for o in self.facts.objects if self.facts.anchor_noun(o)]
        for label in missing[:2]:
            if anchors:
                a = anchors[int(self.rng.integers(len(anchors)))]
                add([], label, f"the {CATEGORIES[label].noun} next to the "
                               f"{self.facts.anchor_noun(a)}", "zt_wo_d", spatial=True)
        return out

    def _absent_labels(self) -> list[str]:
        present_classes = {o.nyu40_id for o in self.facts.objects}
        present_nouns = {n for o in self.facts.objects for n in CATEGORIES[o.label].nouns}
        labels = [lab for lab, c in sorted(CATEGORIES.items())
                  if c.nyu40_id not in present_classes and not set(c.nouns) & present_nouns]
        return [labels[i] for i in self.rng.permutation(len(labels))]

    # -- ScanQA -----------------------------------------------------------------------------
    def scanqa(self) -> list[ScanQARecord]:
        out: list[ScanQARecord] = []
        facts, say = self.facts, self.say

        def add(question: str, answers: list[str], objs: list[SynthObject]) -> None:
            question = question[0].upper() + question[1:]
            out.append(ScanQARecord(self.scene_id, f"{self.scene_id[:9]}-{len(out)}", question,
                                    list(dict.fromkeys(answers)),
                                    [o.object_id for o in objs], [o.label for o in objs]))

        # Colour of one identified object.
        for target in facts.objects:
            chosen = identify(facts, target, self.rng, exclude_kinds=("color",))
            if chosen is None or self.rng.random() < 0.5:
                continue
            np_ = say.noun_phrase(target, chosen)
            q = say.choose(("what color is {x}?", "what is the color of {x}?",
                            "what colour is {x}?"))
            add(q.format(x=np_), [target.color, *COLOR_SYNONYMS.get(target.color, ())], [target])
        # Counting and existence by label, when no other label shares the class.
        for label in facts.labels:
            group = facts.with_label(label)
            if any(o.label != label for o in facts.same_class(group[0])):
                continue
            c = CATEGORIES[label]
            n = len(group)
            q = say.choose(("how many {p} are there in the room?", "how many {p} are in this room?",
                            "what is the number of {p} in the room?", "how many {p} are there?"))
            add(q.format(p=c.plural), [str(n), _NUMBER_WORDS[n] if n < 11 else str(n)], group)
            if self.rng.random() < 0.5:
                q = say.choose(("is there a {n} in the room?", "does this room have a {n}?"))
                add(q.format(n=c.noun), ["yes"], group)
        for label in self._absent_labels()[:2]:
            q = say.choose(("is there a {n} in the room?", "does this room have a {n}?"))
            add(q.format(n=CATEGORIES[label].noun), ["no"], [])
        # Location of an identified object.
        for target in facts.objects:
            where = [f for f in facts.facts(target) if say.location(f) is not None]
            if not where or self.rng.random() < 0.5:
                continue
            chosen = identify(facts, target, self.rng, exclude_kinds=tuple(
                {f.kind for f in where}))
            if chosen is None:
                continue
            np_ = say.noun_phrase(target, chosen)
            answers = [say.location(f) for f in where]
            anchors = [facts.by_id[f.anchor] for f in where if f.anchor is not None]
            add(say.choose(("where is {x}?", "where is {x} located?", "where can i find {x}?"))
                .format(x=np_), answers, [target, *anchors[:1]])
        # Relations: what is on / next to / in front of an anchor.
        for anchor in facts.objects:
            name = facts.anchor_noun(anchor)
            if name is None:
                continue
            kids = facts.on_top(anchor)
            if kids:
                nouns = sorted({CATEGORIES[k.label].noun for k in kids})
                add(say.choose(("what is on the {a}?", "what is on top of the {a}?",
                                "what is placed on the {a}?")).format(a=name),
                    [" and ".join(nouns)], kids)
            near = sorted((near_gap(o, anchor), o.object_id) for o in facts.objects
                          if o.object_id != anchor.object_id and o.support is None
                          and anchor.support != o.object_id)
            if len(near) >= 2 and near[0][0] <= 0.3 and near[1][0] >= near[0][0] + 0.4:
                o = facts.by_id[near[0][1]]
                add(say.choose(("what is next to the {a}?", "what is beside the {a}?",
                                "what object is closest to the {a}?")).format(a=name),
                    [CATEGORIES[o.label].noun], [o, anchor])
        # Size comparisons between two named objects.
        named = [o for o in facts.objects if facts.anchor_noun(o)]
        pairs = [(a, b) for i, a in enumerate(named) for b in named[i + 1:]
                 if max(a.volume, b.volume) >= SIZE_RATIO * min(a.volume, b.volume)]
        for k in self.rng.permutation(len(pairs))[:3]:
            a, b = pairs[int(k)]
            if self.rng.random() < 0.5:
                a, b = b, a
            bigger = a if a.volume > b.volume else b
            na, nb = facts.anchor_noun(a), facts.anchor_noun(b)
            if self.rng.random() < 0.5:
                add(f"which is bigger, the {na} or the {nb}?", [facts.anchor_noun(bigger)],
                    [a, b])
            else:
                add(f"is the {na} larger than the {nb}?", ["yes" if bigger is a else "no"],
                    [a, b])
        volumes = sorted(facts.objects, key=lambda o: -o.volume)
        if len(volumes) >= 2 and volumes[0].volume >= SIZE_RATIO * volumes[1].volume:
            big = volumes[0]
            add(say.choose(("what is the largest object in the room?",
                            "what is the biggest piece of furniture in this room?")),
                [CATEGORIES[big.label].noun], [big])
        return out


def annotate(scene_id: str, facts: SceneFacts, rng: np.random.Generator, *,
             sqa3d: list[SQA3DRecord] | None = None) -> SceneAnnotations:
    """Write every annotation type for one scene (SQA3D comes from :mod:`situated`)."""
    writer = _Writer(scene_id, facts, rng)
    return SceneAnnotations(scanrefer=writer.scanrefer(per_object=2),
                            scan2cap=writer.scan2cap(per_object=2),
                            multi3drefer=writer.multi3drefer(), scanqa=writer.scanqa(),
                            sqa3d=list(sqa3d or []))
