"""Shared helpers of the test_training_* tests: a tiny synthetic dataset and stage configs."""
from __future__ import annotations

from pathlib import Path

from scene_llm_ros.data.synth import SynthConfig, write_dataset
from training.config import TrainConfig, config_from_dict

#: 4 scenes -> 2 train, 1 val, 1 test; small images and few frames keep fusion at ~1 s/scene.
SYNTH = SynthConfig(width=160, height=120, num_frames=12, write_sens=False,
                    split_ratios=(0.5, 0.25, 0.25))
TINY_MODEL = {"init": "tiny", "tiny": {"vocab_size": 400}, "max_new_tokens": 12}


def make_dataset(root: Path, seed: int = 5) -> Path:
    """Write the tiny synthetic dataset (other rooms, same scene ids for another ``seed``)
    into ``root`` and return it."""
    write_dataset(root, SYNTH, scenes=4, seed=seed)
    return root


def stage_config(root: Path, out_dir: Path, *, sources: dict, trainable: list[str],
                 model: dict | None = None, max_steps: int = 4, examples: int = 2,
                 lr: float = 5e-3, checkpoint_every: int = 0, per_source: int = 2,
                 grounding_weight: float = 1.0, cache_dir: Path | None = None) -> TrainConfig:
    """A few-step stage over at most ``per_source`` records of each source."""
    return config_from_dict({
        "seed": 0,
        "data": {"root": str(root), "split": "train", "sources": sources,
                 "max_examples_per_source": per_source,
                 "cache_dir": str(cache_dir) if cache_dir else None},
        "fusion": {"max_patch_tokens": 64},
        "model": model or TINY_MODEL,
        "stage": {"name": "test", "trainable": trainable,
                  "lora": {"rank": 4, "alpha": 8, "dropout": 0.1},
                  "grounding_weight": grounding_weight},
        "optim": {"lr": lr, "max_steps": max_steps, "examples_per_step": examples,
                  "warmup_steps": 0},
        "run": {"out_dir": str(out_dir), "checkpoint_every": checkpoint_every,
                "log_every": 1},
    })
