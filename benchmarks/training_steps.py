"""Training-step costs of the embedded model's slowest stages, measured side by side in one run.

    . tools/env.sh && python benchmarks/training_steps.py [--steps 20] [--threads 2]

1. **Segment listener step** (the embedded model's listener shape, a batch of 32 rooms of 48
   segments, random features; forward, backward and AdamW), once with glibc malloc's
   defaults and once after :func:`~scene_llm_ros.allocator.reuse_freed_memory` (what every
   offline ``scene-llm`` verb now calls). Each runs in its own child process, since the
   setting holds for a process's lifetime; its relation grid, (32, 48, 48, 128) floats, is
   above glibc's 32 MiB mmap threshold.
2. **Patch-encoder alignment step** (stage 0: the embedded encoder's shape, 32 images of
   192x256, forward, backward and AdamW) in float32 and under bfloat16 autocast
   (``optim.mixed_precision: bf16``), alternating in one process with freed memory reused.

Prints the median step times and their ratios.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from scene_llm_ros.allocator import reuse_freed_memory
from scene_llm_ros.embedded import resolve_model_path
from scene_llm_ros.fusion.encoders import BuiltinPatchEncoder, load_patch_encoder
from scene_llm_ros.grounding.segment_features import (
    COLOUR_FEATURES,
    PAIR_FEATURES,
    SEGMENT_GEOMETRY_FEATURES,
)
from scene_llm_ros.model.segment_listener import LISTENER_DIR, SegmentListener

_BATCH, _SEGMENTS, _WORDS = 32, 48, 40


def _step_ms(step) -> float:
    start = time.perf_counter()
    step()
    return (time.perf_counter() - start) * 1000.0


def _median_ms(step, steps: int) -> float:
    step()  # warm-up: first allocations, oneDNN kernels
    return statistics.median(_step_ms(step) for _ in range(steps))


def listener_step_ms(steps: int) -> float:
    """Median training step of a fresh listener shaped like the embedded model's."""
    listener = SegmentListener.from_pretrained(resolve_model_path("embedded") / LISTENER_DIR)
    listener.train()
    config = listener.config
    classes = len(config.class_names)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (_BATCH, _WORDS), generator=generator)
    segments = torch.rand(_BATCH, _SEGMENTS, classes + SEGMENT_GEOMETRY_FEATURES,
                          generator=generator)
    pairs = torch.rand(_BATCH, _SEGMENTS, _SEGMENTS, PAIR_FEATURES, generator=generator)
    mask = torch.ones(_BATCH, _SEGMENTS, dtype=torch.bool)
    colours = torch.rand(_BATCH, _SEGMENTS, COLOUR_FEATURES, generator=generator)
    target = torch.randint(0, _SEGMENTS, (_BATCH,), generator=generator)
    optimizer = torch.optim.AdamW(listener.parameters(), lr=1e-4)

    def step() -> None:
        scores, candidates = listener.logits(ids, segments, pairs, mask, colours)
        loss = F.cross_entropy(scores, target) + 0.5 * F.cross_entropy(candidates, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return _median_ms(step, steps)


def encoder_step_ms(steps: int) -> dict[str, float]:
    """Median stage-0 steps in float32 and under bfloat16 autocast, alternating."""
    config = load_patch_encoder(str(resolve_model_path("embedded") / "patch_encoder")).config
    encoder = BuiltinPatchEncoder(config, seed=0)
    encoder.net.train()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(_BATCH, 3, config.image_height, config.image_width,
                        generator=generator)
    head = torch.nn.Linear(config.feature_dim, 64)
    optimizer = torch.optim.AdamW([*encoder.net.parameters(), *head.parameters()], lr=1e-4)

    def step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = head(encoder.net(images))
        loss = logits.float().square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    times: dict[str, list[float]] = {"float32": [], "bf16": []}
    for name in times:  # warm-up of each precision's kernels
        step(name == "bf16")
    for _ in range(steps):
        for name in times:
            times[name].append(_step_ms(lambda name=name: step(name == "bf16")))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=["default", "reuse"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        applied = reuse_freed_memory() if args.child == "reuse" else False
        print(json.dumps({"ms": listener_step_ms(args.steps), "applied": applied}))
        return

    listener = {}
    for allocator in ("default", "reuse"):
        out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps),
                              "--threads", str(args.threads), "--child", allocator],
                             check=True, capture_output=True, text=True).stdout
        listener[allocator] = json.loads(out.strip().splitlines()[-1])
    default, reuse = listener["default"]["ms"], listener["reuse"]["ms"]
    print(f"segment listener step (batch {_BATCH}, {_SEGMENTS} segments, {args.threads} "
          f"threads): glibc defaults {default:.0f} ms | freed memory reused "
          f"{reuse:.0f} ms (applied: {listener['reuse']['applied']}) -> {default / reuse:.2f}x")

    reuse_freed_memory()
    encoder = encoder_step_ms(args.steps)
    print(f"patch-encoder alignment step (batch {_BATCH}): float32 {encoder['float32']:.0f} ms"
          f" | bf16 autocast {encoder['bf16']:.0f} ms -> "
          f"{encoder['float32'] / encoder['bf16']:.2f}x")


if __name__ == "__main__":
    main()
