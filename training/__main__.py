"""`python -m training`: the ``scene-llm`` training verbs without the CLI.

    python -m training --config training/configs/stage1_alignment.yaml --out runs/stage1
    torchrun --nproc_per_node=2 -m training --config training/configs/stage1_alignment.yaml
    python -m training eval-offline --checkpoint runs/stage3/final --data DIR --out DIR
    python -m training align-encoder --config training/configs/encoder_alignment.yaml

Arguments without a verb are those of ``train``.
"""
from __future__ import annotations

import sys

from scene_llm_ros.cli import main

VERBS = ("align-encoder", "train", "eval-offline", "eval_offline")


def run(argv: list[str]) -> int:
    """Dispatch to ``scene-llm``; ``train`` is the default verb."""
    if not argv or argv[0] not in VERBS:
        argv = ["train", *argv]
    return main(argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
