"""Settings of the fusion core, with defaults and validation in one place."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from scene_llm_ros.fusion.keyframes import KeyframePolicy


@dataclass
class FusionConfig:
    """Every knob of :class:`~scene_llm_ros.fusion.scene.SceneFusion`.

    :ivar voxel_size_m: TSDF voxel edge, metres.
    :ivar block_resolution: TSDF voxels per block edge.
    :ivar depth_max_m: depths beyond this are ignored (TSDF and patches alike).
    :ivar trunc_voxel_multiplier: TSDF truncation distance, in voxels.
    :ivar device: Open3D device for the TSDF ("CPU:0", "CUDA:0").
    :ivar patch_voxel_size_m: edge of a 3D patch memory voxel, metres.
    :ivar max_patch_tokens: token budget handed to the model (farthest-point sampled).
    :ivar min_patch_valid_fraction: a patch needs this fraction of valid depth pixels.
    :ivar surface_weight_threshold: TSDF weight a voxel needs to count as observed surface
        (point clouds, meshes, snapshots).
    :ivar semantic_pixel_stride: with an encoder that classifies its patches, every n-th
        keyframe pixel (both axes) carries its class probabilities into the semantic map.
    :ivar keyframes: when a frame also updates the patch memory.
    """

    voxel_size_m: float = 0.04
    block_resolution: int = 16
    depth_max_m: float = 5.0
    trunc_voxel_multiplier: float = 4.0
    device: str = "CPU:0"
    patch_voxel_size_m: float = 0.2
    max_patch_tokens: int = 1024
    min_patch_valid_fraction: float = 0.1
    surface_weight_threshold: float = 3.0
    semantic_pixel_stride: int = 4
    keyframes: KeyframePolicy = field(default_factory=KeyframePolicy)

    def __post_init__(self) -> None:
        if isinstance(self.keyframes, dict):
            self.keyframes = KeyframePolicy(**self.keyframes)
        for name in ("voxel_size_m", "depth_max_m", "patch_voxel_size_m",
                     "trunc_voxel_multiplier"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.semantic_pixel_stride < 1:
            raise ValueError(f"semantic_pixel_stride must be >= 1, got "
                             f"{self.semantic_pixel_stride}")
        if self.max_patch_tokens < 1:
            raise ValueError(f"max_patch_tokens must be >= 1, got {self.max_patch_tokens}")
        if not 0.0 <= self.min_patch_valid_fraction <= 1.0:
            raise ValueError(f"min_patch_valid_fraction must be in [0, 1], got "
                             f"{self.min_patch_valid_fraction}")

    def to_dict(self) -> dict:
        return asdict(self)
