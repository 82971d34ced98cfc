"""SQA3D-style situated questions: an agent's position and heading, and questions about
what lies on its left, right, in front or behind."""
from __future__ import annotations

import numpy as np

from scene_llm_ros.data.annotations import SQA3DAnswer, SQA3DRecord
from scene_llm_ros.data.synth.assembly import SynthObject
from scene_llm_ros.data.synth.library import CATEGORIES
from scene_llm_ros.data.synth.phrases import Wording, identify
from scene_llm_ros.data.synth.relations import SceneFacts

_SEATS = ("chair", "office chair", "sofa", "bed", "toilet")
_SECTOR_WORDS = {"left": ("on my left", "to my left"), "right": ("on my right", "to my right"),
                 "front": ("in front of me", "ahead of me"), "back": ("behind me",)}
_DIRECTION_ANSWER = {"left": "left", "right": "right", "front": "forward", "back": "backward"}
_MAX_RANGE_M = 4.0


def yaw_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """(w, x, y, z) of a rotation by ``yaw`` about +Z (the agent looks along its rotated +x)."""
    yaw = float(np.arctan2(np.sin(yaw), np.cos(yaw)))
    return (float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2)))


class _Situations:
    def __init__(self, scene_id: str, facts: SceneFacts, rng: np.random.Generator) -> None:
        self.scene_id = scene_id
        self.facts = facts
        self.rng = rng
        self.say = Wording(facts, rng)

    def _free(self, xy: np.ndarray, ignore: int | None = None) -> bool:
        if not self.facts.room.contains(xy, margin=0.25)[0]:
            return False
        for o in self.facts.objects:
            if o.object_id == ignore or o.box_min[2] > 1.0:
                continue
            if np.all(xy >= o.box_min[:2] - 0.15) and np.all(xy <= o.box_max[:2] + 0.15):
                return False
        return True

    def _name(self, obj: SynthObject) -> str | None:
        chosen = identify(self.facts, obj, self.rng)
        return None if chosen is None else self.say.noun_phrase(obj, chosen)

    def situations(self) -> list[tuple[str, list[str], np.ndarray, float, set[int]]]:
        """(text, alternatives, position (3,), yaw, ids of objects to leave out)."""
        out = []
        for obj in self.facts.objects:
            if obj.support is not None:
                continue
            name = self._name(obj)
            if name is None:
                continue
            yaw_front = float(np.arctan2(obj.front[1], obj.front[0]))
            skip = {obj.object_id} | {k.object_id for k in self.facts.on_top(obj)}
            if obj.label in _SEATS:
                text = f"i am sitting on {name}"
                alt = [f"i am seated on {name}", f"i have taken a seat on {name}"]
                out.append((text, alt, np.array([*obj.center[:2], 0.0]), yaw_front, skip))
            elif self.facts.has_front(obj) and CATEGORIES[obj.label].mount != "wall":
                pos = obj.center[:2] + obj.front * (obj.size[1] / 2 + 0.5)
                if self._free(pos):
                    text = f"i am standing in front of {name}, facing it"
                    alt = [f"i am facing {name} and standing right in front of it"]
                    out.append((text, alt, np.array([*pos, 0.0]), yaw_front + np.pi, skip))
        return [out[i] for i in self.rng.permutation(len(out))][:4]

    def questions(self, position: np.ndarray, yaw: float, skip: set[int]):
        """(question, answers, question_type, answer_type) that hold for the agent."""
        facts = self.facts
        xy = position[:2]
        visible = [o for o in facts.objects if o.object_id not in skip
                   and np.linalg.norm(o.center[:2] - xy) <= _MAX_RANGE_M]
        sectors = {o.object_id: facts.sector(xy, yaw, o) for o in visible}
        qs = []
        for sector in ("left", "right", "front", "back"):
            inside = sorted((float(np.linalg.norm(o.center[:2] - xy)), o.object_id)
                            for o in visible if sectors[o.object_id] == sector)
            if inside and (len(inside) == 1 or inside[1][0] >= inside[0][0] + 0.5):
                o = facts.by_id[inside[0][1]]
                word = self.say.choose(_SECTOR_WORDS[sector])
                q = self.say.choose(("what is {w}?", "what is the closest object {w}?",
                                     "which object is {w}?")).format(w=word)
                qs.append((q, [CATEGORIES[o.label].noun], "What", "other"))
        for o in visible:
            name = facts.anchor_noun(o)
            side = sectors[o.object_id]
            if name is None or side is None:
                continue
            if side in ("left", "right") and self.rng.random() < 0.5:
                qs.append((f"is the {name} on my left or on my right?", [side], "Is", "other"))
            else:
                q = self.say.choose(("which direction should i go to reach the {n}?",
                                     "which way should i turn to get to the {n}?"))
                qs.append((q.format(n=name), [_DIRECTION_ANSWER[side]], "Which", "other"))
        for label in facts.labels:
            group = facts.with_label(label)
            if any(o.label != label for o in facts.same_class(group[0])):
                continue
            if any(o.object_id not in sectors or sectors[o.object_id] is None for o in group):
                continue  # an unclear or far member would make the count ambiguous
            ahead = [o for o in group if sectors[o.object_id] == "front"]
            if ahead and self.rng.random() < 0.6:
                qs.append((f"how many {CATEGORIES[label].plural} are in front of me?",
                           [str(len(ahead))], "How", "number"))
            for sector in ("left", "right", "back"):
                there = [o for o in group if sectors[o.object_id] == sector]
                if len(there) == 1 and self.rng.random() < 0.5:
                    word = self.say.choose(_SECTOR_WORDS[sector])
                    noun = (facts.nouns(label) or [CATEGORIES[label].noun])[0]
                    qs.append((f"what color is the {noun} {word}?", [there[0].color], "What",
                               "other"))
        return [qs[i] for i in self.rng.permutation(len(qs))]


def situated_questions(scene_id: str, facts: SceneFacts, rng: np.random.Generator, *,
                       first_question_id: int, per_situation: int = 3) -> list[SQA3DRecord]:
    """SQA3D records for up to four situations of ``scene_id``, ``per_situation`` each.

    Positions are on the floor (z = 0) in the scene frame; the rotation is a yaw about +Z
    whose rotated +x axis is the agent's viewing direction.
    """
    gen = _Situations(scene_id, facts, rng)
    records: list[SQA3DRecord] = []
    for text, alternatives, position, yaw, skip in gen.situations():
        for question, answers, q_type, a_type in gen.questions(position, yaw, skip)[
                :per_situation]:
            records.append(SQA3DRecord(
                question_id=first_question_id + len(records), scene_id=scene_id,
                situation=text[0].upper() + text[1:] + ".",
                alternative_situation=[a[0].upper() + a[1:] + "." for a in alternatives],
                question=question[0].upper() + question[1:], question_type=q_type,
                answer_type=a_type,
                answers=[SQA3DAnswer(a, "yes", i + 1) for i, a in enumerate(answers)],
                position=tuple(round(float(v), 4) for v in position),
                rotation=tuple(round(v, 6) for v in yaw_quaternion(yaw))))
    return records
