"""The learning-rate schedule: linear warm-up, then cosine decay, as a pure function of step."""
from __future__ import annotations

import math

from training.config import OptimConfig


def lr_at(step: int, optim: OptimConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based).

    Warm-up rises linearly to ``lr`` over ``warmup_steps``; the rest decays by a half cosine
    to ``min_lr_ratio * lr`` at ``max_steps``. Being a function of the step alone, it resumes
    exactly without a scheduler state.
    """
    if optim.warmup_steps and step < optim.warmup_steps:
        return optim.lr * (step + 1) / optim.warmup_steps
    span = max(1, optim.max_steps - optim.warmup_steps)
    progress = min(1.0, (step - optim.warmup_steps) / span)
    floor = optim.lr * optim.min_lr_ratio
    return floor + (optim.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
