"""What the segment listener adds to a grounded answer, measured side by side in one run.

    . tools/env.sh && python benchmarks/segment_listener.py [--questions 20] [--frames 30]

Fuses a synthetic 320x240 room with the embedded model's encoder and training fusion settings
(not timed), then for ``--questions`` ScanRefer-style requests ("Find the <class>.") times, per
request on one snapshot:

* ``SceneLlm.answer`` (generation and the grounding head), the part every answer pays;
* grounding through the class segments the way the engine does without a listener
  (:meth:`SnapshotGrounder.ground` of the head's box);
* grounding through the listener (:func:`ground_answer`): segment features (once per
  snapshot, then cached), the listener's scores and the refinement of its pick.

Segments are computed once per snapshot and shared by both paths; that first-use cost is
reported on its own. The ratio printed is listener grounding over answer time.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from scene_llm_ros.data.synth import SynthConfig, generate_scene
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.encoders import model_scene_tokens
from scene_llm_ros.fusion.scene import SceneFusion
from scene_llm_ros.grounding import SnapshotGrounder
from scene_llm_ros.inference.answer_grounding import ground_answer
from scene_llm_ros.model import SceneLlm


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = SceneLlm.from_pretrained("embedded")
    scene = generate_scene(11, "scene9000_00", SynthConfig(width=320, height=240,
                                                           num_frames=args.frames,
                                                           write_sens=False))
    fusion = SceneFusion(FusionConfig(**model_scene_tokens("embedded"),
                                      surface_weight_threshold=1.0),
                         encoder=model.patch_encoder)
    for frame in scene.frames:
        fusion.integrate(frame)
    snapshot = fusion.snapshot()
    names = sorted({o.label for o in scene.objects if not o.structure})
    questions = [f"Find the {names[i % len(names)]}." for i in range(args.questions)]

    grounder = SnapshotGrounder(snapshot)
    start = time.perf_counter()
    segments = grounder.segments
    segments_ms = _ms(start)
    start = time.perf_counter()
    grounder.segment_features(model.segment_listener.config.max_segments)
    features_ms = _ms(start)

    answer_ms, snap_ms, listener_ms = [], [], []
    for question in questions:
        start = time.perf_counter()
        answer = model.answer(snapshot, question, task="ground")
        answer_ms.append(_ms(start))
        if not answer.objects:
            continue
        obj = answer.objects[0]
        start = time.perf_counter()
        grounder.ground(obj.label, obj.center, obj.size)
        snap_ms.append(_ms(start))
        start = time.perf_counter()
        ground_answer(model, grounder, answer.objects[:1], question=question, task="ground")
        listener_ms.append(_ms(start))

    median = statistics.median
    print(f"room: {len(snapshot.points)} surface points, {len(segments)} class segments, "
          f"{len(snapshot.positions)} scene tokens; {len(listener_ms)} grounded answers")
    print(f"once per snapshot: class segments {segments_ms:.1f} ms, listener features "
          f"{features_ms:.1f} ms")
    print(f"per request (median): answer {median(answer_ms):.1f} ms | snap to class segment + "
          f"refine {median(snap_ms):.1f} ms | listener pick + refine {median(listener_ms):.1f} ms")
    print(f"listener grounding / answer: {median(listener_ms) / median(answer_ms):.2f}x; "
          f"listener / class-segment grounding: {median(listener_ms) / median(snap_ms):.2f}x")


if __name__ == "__main__":
    main()
