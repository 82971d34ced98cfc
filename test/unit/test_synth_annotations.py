"""Synthetic annotations are true for their scene."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from scene_llm_ros.data.synth import SynthConfig, generate_scene
from scene_llm_ros.data.synth.phrases import identify
from scene_llm_ros.data.synth.relations import SceneFacts, center_distance, near_gap


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(s, f"scene{9000 + s}_00", SynthConfig(num_frames=0))
            for s in range(8)]


def _facts(scene):
    return SceneFacts(scene.room, scene.objects)


def test_every_type_present_and_varied(scenes):
    totals = Counter()
    texts = set()
    for scene in scenes:
        totals.update(scene.annotations.counts())
        texts |= {r.description for r in scene.annotations.scanrefer}
    assert all(totals[k] > 20 for k in ("scanrefer", "scan2cap", "multi3drefer", "scanqa",
                                       "sqa3d")), totals
    assert len(texts) > 0.8 * totals["scanrefer"]
    eval_types = {r.eval_type for s in scenes for r in s.annotations.multi3drefer}
    assert eval_types == {"zt_w_d", "zt_wo_d", "st_w_d", "st_wo_d", "mt"}


def test_unique_multiple_follow_scanrefer_rule(scenes):
    for scene in scenes:
        by_id = {o.object_id: o for o in scene.objects}
        classes = Counter(o.nyu40_id if o.nyu40_id not in (39, 40) else o.label
                          for o in scene.furniture)
        for record in scene.annotations.scanrefer:
            obj = by_id[int(record.object_id)]
            key = obj.nyu40_id if obj.nyu40_id not in (39, 40) else obj.label
            assert record.extra["eval_type"] == ("unique" if classes[key] == 1 else "multiple")
            assert record.object_name == obj.label.replace(" ", "_")


def test_counting_existence_and_colour_answers(scenes):
    checked = Counter()
    for scene in scenes:
        by_id = {o.object_id: o for o in scene.objects}
        for qa in scene.annotations.scanqa:
            q = qa.question.lower()
            if q.startswith(("how many", "what is the number")):
                label = qa.object_names[0]
                assert qa.answers[0] == str(sum(o.label == label for o in scene.furniture))
                assert len(qa.object_ids) == int(qa.answers[0])
                checked["count"] += 1
            elif q.startswith(("is there", "does this room")):
                assert qa.answers == (["yes"] if qa.object_ids else ["no"])
                checked["exist"] += 1
            elif "color" in q or "colour" in q:
                assert qa.answers[0] == by_id[qa.object_ids[0]].color
                checked["color"] += 1
            elif q.startswith("what is on"):
                for oid in qa.object_ids:
                    assert by_id[oid].support is not None
                checked["on"] += 1
    assert min(checked.values()) >= 3 and len(checked) == 4, checked


def test_facts_hold_geometrically(scenes):
    seen = Counter()
    for scene in scenes:
        facts = _facts(scene)
        for target in facts.objects:
            peers = [o for o in facts.same_class(target) if o is not target]
            for fact in facts.facts(target):
                seen[fact.kind] += 1
                anchor = facts.by_id.get(fact.anchor) if fact.anchor is not None else None
                if fact.kind == "closest":
                    d = center_distance(target, anchor)
                    assert all(center_distance(p, anchor) > d for p in peers)
                elif fact.kind == "farthest":
                    d = center_distance(target, anchor)
                    assert all(center_distance(p, anchor) < d for p in peers)
                elif fact.kind == "on":
                    assert target.support == anchor.object_id
                    assert anchor.box_min[2] + 0.1 < target.box_min[2] <= anchor.box_max[2]
                elif fact.kind == "next_to":
                    assert near_gap(target, anchor) <= 0.45
                elif fact.kind in ("left", "right"):
                    right, _ = facts.lateral(target, anchor)
                    assert (right > 0) == (fact.kind == "right")
                elif fact.kind == "color":
                    assert fact.value == target.color
                assert all(p.object_id in fact.excludes or p.object_id not in fact.excludes
                           for p in peers)
    assert seen["closest"] > 5 and seen["next_to"] > 5 and seen["left"] + seen["right"] > 5


def test_identifying_facts_rule_out_every_distractor(scenes):
    rng = np.random.default_rng(0)
    for scene in scenes:
        facts = _facts(scene)
        for target in facts.objects:
            chosen = identify(facts, target, rng)
            if chosen is None:
                continue
            ruled_out = set().union(*[f.excludes for f in chosen]) if chosen else set()
            peers = {o.object_id for o in facts.same_class(target)} - {target.object_id}
            assert peers <= ruled_out


def test_scanrefer_closest_phrases_name_the_closest_object(scenes):
    pattern = re.compile(r"(?:closest|nearest) to the ([a-z ]+?)(?:[.,]| and| when| if|$)")
    checked = 0
    for scene in scenes:
        facts = _facts(scene)
        for record in scene.annotations.scanrefer:
            target = facts.by_id[int(record.object_id)]
            for name in pattern.findall(record.description):
                anchors = [o for o in facts.objects if facts.anchor_noun(o) == name]
                assert len(anchors) == 1, (name, record.description)
                anchor = anchors[0]
                peers = [o for o in facts.same_class(target) if o is not target]
                d = center_distance(target, anchor)
                assert all(center_distance(p, anchor) >= d for p in peers), record.description
                checked += 1
    assert checked >= 5


def test_sqa3d_left_right_answers(scenes):
    checked = 0
    for scene in scenes:
        facts = _facts(scene)
        for record in scene.annotations.sqa3d:
            m = re.match(r"Is the (.+) on my left or on my right\?", record.question)
            if not m:
                continue
            obj = next(o for o in facts.objects if facts.anchor_noun(o) == m.group(1))
            w, _, _, z = record.rotation
            yaw = 2 * np.arctan2(z, w)
            d = obj.center[:2] - np.array(record.position[:2])
            cross = np.cos(yaw) * d[1] - np.sin(yaw) * d[0]
            assert record.answers[0].answer == ("left" if cross > 0 else "right")
            checked += 1
    assert checked >= 3


def test_multi3drefer_targets(scenes):
    for scene in scenes:
        by_id = {o.object_id: o for o in scene.objects}
        for record in scene.annotations.multi3drefer:
            if record.eval_type.startswith("zt"):
                assert record.object_ids == []
                m = re.match(r"the ([a-z ]+?) ([a-z ]+)\.$", record.description)
                label = record.object_name.replace("_", " ")
                if m and not record.spatial:
                    assert all(o.color != m.group(1) for o in scene.furniture if o.label == label)
            elif record.eval_type == "mt":
                assert len(record.object_ids) >= 2
                labels = {by_id[i].label for i in record.object_ids}
                assert labels == {record.object_name.replace("_", " ")}
            else:
                assert len(record.object_ids) == 1
                obj = by_id[record.object_ids[0]]
                unique = len(_facts(scene).same_class(obj)) == 1
                assert record.eval_type == ("st_wo_d" if unique else "st_w_d")
