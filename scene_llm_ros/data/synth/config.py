"""Settings of the synthetic scene generator."""
from __future__ import annotations

from dataclasses import dataclass

from scene_llm_ros.data.types import CameraIntrinsics
from scene_llm_ros.errors import SceneLlmError

# ScanNet's depth camera at 640 x 480 (focal lengths of the structure sensor).
SCANNET_FOCAL_640 = 577.87


class SynthConfigError(SceneLlmError):
    """A synthetic-scene setting is out of range (the message names it)."""


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of :func:`~scene_llm_ros.data.synth.generate_scene`.

    :ivar width: image width in pixels.
    :ivar height: image height in pixels.
    :ivar num_frames: frames per scene; 0 builds the scene and annotations without rendering.
    :ivar fps: camera rate; stamps lie on this grid.
    :ivar walking_speed_mps: camera speed along the path, which sets how many sensor ticks
        separate two kept frames (like ScanNet's exported frame skip).
    :ivar noise: add sensor noise to colour and depth.
    :ivar max_depth_m: depth beyond this is invalid (NaN).
    :ivar min_depth_m: depth closer than this is invalid (NaN).
    :ivar ceiling: mesh and render a ceiling.
    :ivar instance_maps: store int32 (H, W) object ids (-1 = none) in
        ``frame.extras["instance"]`` (costs memory; tests use it).
    :ivar write_sens: write ``<scene_id>.sens`` besides the exported frames.
    :ivar split_ratios: train / val / test fractions of the scenes.
    :ivar jpeg_quality: quality of the exported colour frames.
    """

    width: int = 640
    height: int = 480
    num_frames: int = 150
    fps: float = 30.0
    walking_speed_mps: float = 0.5
    noise: bool = True
    max_depth_m: float = 7.0
    min_depth_m: float = 0.3
    ceiling: bool = True
    instance_maps: bool = False
    write_sens: bool = True
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if self.width < 8 or self.height < 8:
            raise SynthConfigError(f"image size must be at least 8x8, got {self.width}x"
                                   f"{self.height}")
        if self.num_frames < 0:
            raise SynthConfigError(f"num_frames must be >= 0, got {self.num_frames}")
        if self.fps <= 0 or self.walking_speed_mps <= 0:
            raise SynthConfigError(f"fps and walking_speed_mps must be positive, got "
                                   f"{self.fps} and {self.walking_speed_mps}")
        if not 0 < self.min_depth_m < self.max_depth_m:
            raise SynthConfigError(f"need 0 < min_depth_m < max_depth_m, got "
                                   f"{self.min_depth_m} and {self.max_depth_m}")
        ratios = self.split_ratios
        if len(ratios) != 3 or min(ratios) < 0 or abs(sum(ratios) - 1.0) > 1e-6:
            raise SynthConfigError(f"split_ratios must be three non-negative fractions summing "
                                   f"to 1, got {ratios}")

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """ScanNet-like pinhole intrinsics scaled to ``width`` x ``height``."""
        return CameraIntrinsics(SCANNET_FOCAL_640, SCANNET_FOCAL_640, 319.5, 239.5, 640,
                                480).resized(self.width, self.height)
