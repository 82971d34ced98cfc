"""Checkpoint directories of a run: the model (``SceneLlm.from_pretrained`` layout) plus
``training.json`` (how it was trained: stage, step, fusion and data settings) and the
resumable ``training_state/``.

Run layout::

    <out>/config.yaml                    resolved config of the run
    <out>/checkpoints/step_000050/       every ``checkpoint_every`` steps, newest kept
    <out>/final/                         at the end
    <out>/tensorboard/                   scalars
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from scene_llm_ros.embedded import resolve_model_path
from scene_llm_ros.fusion.config import FusionConfig
from training.state import STATE_DIR, STATE_JSON, has_training_state

logger = logging.getLogger(__name__)

TRAINING_JSON = "training.json"
CHECKPOINTS_DIR = "checkpoints"
FINAL_DIR = "final"
TENSORBOARD_DIR = "tensorboard"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def step_dir(out_dir: str | Path, step: int) -> Path:
    return Path(out_dir) / CHECKPOINTS_DIR / f"step_{step:06d}"


def write_training_json(checkpoint_dir: str | Path, facts: dict) -> None:
    """Record how the checkpoint was trained (read back by offline evaluation)."""
    (Path(checkpoint_dir) / TRAINING_JSON).write_text(json.dumps(facts, indent=1) + "\n",
                                                      encoding="utf-8")


def read_training_json(checkpoint_dir: str | Path) -> dict | None:
    """The checkpoint's ``training.json``, or None for a checkpoint not written by training."""
    path = Path(checkpoint_dir) / TRAINING_JSON
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def fusion_settings(checkpoint_dir: str | Path) -> tuple[FusionConfig, dict] | None:
    """The fusion config and frame selection the checkpoint's scene tokens were made with
    (``embedded`` names the embedded model, as in ``SceneLlm.from_pretrained``)."""
    facts = read_training_json(resolve_model_path(checkpoint_dir))
    if facts is None or "fusion" not in facts:
        return None
    return FusionConfig(**facts["fusion"]), dict(facts.get("frames", {}))


def _state_step(checkpoint_dir: Path) -> int:
    return int(json.loads((checkpoint_dir / STATE_DIR / STATE_JSON).read_text())["step"])


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The resumable checkpoint of the run with the most steps (``final`` included)."""
    out_dir = Path(out_dir)
    candidates = [p for p in (out_dir / CHECKPOINTS_DIR).glob("step_*")
                  if _STEP_DIR.match(p.name)] + [out_dir / FINAL_DIR]
    complete = [p for p in candidates if p.is_dir() and has_training_state(p)]
    if not complete:
        return None
    return max(complete, key=lambda p: (_state_step(p), p.name == FINAL_DIR))


def prune_checkpoints(out_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest step checkpoints; return the deleted paths."""
    steps = sorted((p for p in (Path(out_dir) / CHECKPOINTS_DIR).glob("step_*")
                    if _STEP_DIR.match(p.name)), key=lambda p: int(_STEP_DIR.match(p.name)[1]))
    removed = steps[:-keep] if keep > 0 else steps
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
        logger.debug("removed old checkpoint %s", path)
    return removed
