"""Amodal box completion: the whole object's box from the part of it the camera saw.

A segment of the fused surface covers what the frames observed of an object: the front of
a cabinet against a wall, the top and one side of a table. Its box is then too small and off
centre (on held-out rooms, a segment overlapping its object at all reaches IoU 0.5 with it
for only 0.59 of them). The completer regresses, from the segment's class, colour, size,
mass and height and from how close it is to the room's bounds, the offset of the object's
centre and the log ratio of its size, as 3D detectors complete partial scans. It is
question-independent and trained with the segment listener; it is stored beside it in
``box_completer/``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from scene_llm_ros.grounding.segment_features import (
    ROOM_CONTEXT_FEATURES,
    SEGMENT_GEOMETRY_FEATURES,
)
from scene_llm_ros.model import checkpoint

COMPLETER_DIR = "box_completer"
_WEIGHTS_NAME = "box_completer.safetensors"
_WEIGHTS_PREFIX = "completer"
# As in the segment features: keeps log sizes finite for one-voxel segments.
_SIZE_FLOOR_M = 0.02
#: Smallest completed extent, metres (a flat poster stays a valid box).
MIN_COMPLETED_SIZE_M = 0.01


@dataclass
class BoxCompleterConfig:
    """The completer's shape.

    :ivar class_names: the segment classes, in the one-hot order of the inputs.
    :ivar hidden_size: width of the two hidden layers.
    :ivar dropout: dropout after each hidden layer (few distinct objects to learn from).
    """

    class_names: list[str] = field(default_factory=list)
    hidden_size: int = 128
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if not self.class_names or len(set(self.class_names)) != len(self.class_names):
            raise ValueError("class_names must be a non-empty list without duplicates")
        if self.hidden_size < 1 or not 0.0 <= self.dropout < 1.0:
            raise ValueError("hidden_size must be >= 1 and dropout in [0, 1)")

    @property
    def input_size(self) -> int:
        return len(self.class_names) + SEGMENT_GEOMETRY_FEATURES + ROOM_CONTEXT_FEATURES


def completed_boxes(center: torch.Tensor, size: torch.Tensor, deltas: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 3) centres and sizes moved by (..., 6) deltas (centre offset, log size ratio);
    differentiable in ``deltas``."""
    grown = torch.exp(torch.log(size + _SIZE_FLOOR_M) + deltas[..., 3:]) - _SIZE_FLOOR_M
    return center + deltas[..., :3], grown.clamp_min(MIN_COMPLETED_SIZE_M)


def complete_box(center: np.ndarray, size: np.ndarray, deltas: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`completed_boxes` of float64 arrays."""
    center, size = completed_boxes(*(torch.from_numpy(np.asarray(a, np.float64))
                                     for a in (center, size, deltas)))
    return center.numpy(), size.numpy()


def box_deltas(center: np.ndarray, size: np.ndarray, target_center: np.ndarray,
               target_size: np.ndarray) -> np.ndarray:
    """float32 (..., 6) deltas that :func:`complete_box` turns the first box into the second."""
    return np.concatenate([np.asarray(target_center) - center,
                           np.log(np.asarray(target_size) + _SIZE_FLOOR_M)
                           - np.log(np.asarray(size) + _SIZE_FLOOR_M)], axis=-1
                          ).astype(np.float32)


class SegmentBoxCompleter(checkpoint.SideModuleFiles, nn.Module):
    """Regresses box deltas from :meth:`SnapshotGrounder.completion_inputs`.

    :param config: the shape.
    """

    config_class = BoxCompleterConfig
    weights_name = _WEIGHTS_NAME
    weights_prefix = _WEIGHTS_PREFIX
    description = "box completer"

    def __init__(self, config: BoxCompleterConfig) -> None:
        super().__init__()
        self.config = config
        width = config.hidden_size
        # Inputs mix one-hots, colours in [0, 1] and distances in metres: standardised with
        # the training set's statistics, kept with the weights.
        self.register_buffer("input_mean", torch.zeros(config.input_size))
        self.register_buffer("input_scale", torch.ones(config.input_size))
        self.net = nn.Sequential(nn.Linear(config.input_size, width), nn.GELU(),
                                 nn.Dropout(config.dropout), nn.Linear(width, width), nn.GELU(),
                                 nn.Dropout(config.dropout), nn.Linear(width, 6))

    def set_standardization(self, inputs: torch.Tensor) -> None:
        """Standardise inputs with the mean and spread of ``inputs`` (N, input_size)."""
        with torch.no_grad():
            self.input_mean.copy_(inputs.mean(dim=0))
            self.input_scale.copy_(inputs.std(dim=0).clamp_min(1e-3))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 6) deltas of (B, input_size) inputs."""
        return self.net((inputs - self.input_mean) / self.input_scale)

    @torch.inference_mode()
    def complete(self, inputs: np.ndarray, center: np.ndarray, size: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """The completed (centre, size) of a segment's box, float64 (3,) each.

        :raises ValueError: when ``inputs`` is not a vector of ``config.input_size``.
        """
        inputs = np.asarray(inputs, np.float32)
        if inputs.shape != (self.config.input_size,):
            raise ValueError(f"the completer reads {self.config.input_size} numbers, got "
                             f"shape {inputs.shape}")
        device = self.input_mean.device
        deltas = self(torch.from_numpy(inputs)[None].to(device))[0].double().cpu().numpy()
        return complete_box(center, size, deltas)
