"""Per-step loss and throughput statistics, summed over micro-steps and ranks."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from scene_llm_ros.model import SceneLlmLoss

#: Grounding loss parts, in the order of :meth:`StepStats.add`'s vector.
GROUNDING_PARTS = ("total", "token", "box_l1", "box_iou", "label", "token_class")
# Vector layout: total, language, examples, grounded examples, 6 grounding parts, tokens, s.
_SIZE = 4 + len(GROUNDING_PARTS) + 2


def example_vector(loss: SceneLlmLoss) -> torch.Tensor:
    """float64 (10,) detached [total, language, 1, grounded, grounding parts...] of one
    example."""
    values = [loss.total.detach(), loss.language.detach()]
    grounding = loss.grounding
    parts = ([getattr(grounding, p).detach() for p in GROUNDING_PARTS] if grounding is not None
             else [torch.zeros(())] * len(GROUNDING_PARTS))
    flags = [torch.ones(()), torch.ones(()) if grounding is not None else torch.zeros(())]
    return torch.stack([v.double().cpu() for v in (*values, *flags, *parts)])


@dataclass
class StepStats:
    """Means of one optimizer step over all examples of all ranks.

    :ivar grounding: part -> mean over the examples that had ``<ground>`` targets (None when
        no example of the step had any).
    :ivar tokens_per_s: sequence tokens processed per second by all ranks together.
    """

    total: float
    language: float
    grounding: dict[str, float] | None
    tokens_per_s: float

    @staticmethod
    def local_vector(examples: list[torch.Tensor], tokens: int, seconds: float) -> torch.Tensor:
        """This rank's sums, to be all-reduced (summed) over ranks."""
        summed = torch.stack(examples).sum(dim=0)
        return torch.cat([summed, torch.tensor([float(tokens), seconds], dtype=torch.float64)])

    @classmethod
    def from_reduced(cls, vector: torch.Tensor, world_size: int) -> StepStats:
        """Means from the rank-summed :meth:`local_vector`."""
        if vector.shape != (_SIZE,):
            raise ValueError(f"expected a ({_SIZE},) statistics vector, got {tuple(vector.shape)}")
        v = vector.tolist()
        examples, grounded = v[2], v[3]
        grounding = (None if grounded == 0 else
                     {part: v[4 + i] / grounded for i, part in enumerate(GROUNDING_PARTS)})
        # Ranks run concurrently: wall time is the mean of their step times.
        seconds = max(v[-1] / world_size, 1e-9)
        return cls(total=v[0] / examples, language=v[1] / examples, grounding=grounding,
                   tokens_per_s=v[-2] / seconds)
