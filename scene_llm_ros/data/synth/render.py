"""Ray-cast RGB-D rendering of a scene mesh with Lambertian shading and sensor noise."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d
from scipy.ndimage import gaussian_filter1d

from scene_llm_ros.data.synth.assembly import SceneMesh
from scene_llm_ros.data.synth.config import SynthConfig
from scene_llm_ros.data.types import CameraIntrinsics, RGBDFrame

# Structured-light depth noise (standard deviation) grows with the square of the range:
# sigma(z) = a + b * (z - z0)^2, after the Kinect model of Nguyen et al. (3DIMPVT 2012).
_NOISE_A, _NOISE_B, _NOISE_Z0 = 0.0012, 0.0019, 0.4
_EDGE_JUMP = 0.04          # relative depth jump that marks an occlusion edge
_EDGE_DROP_P = 0.5         # probability that an edge pixel has no depth
_RANDOM_DROP_P = 0.004     # isolated missing pixels
_GRAZING_COS = 0.12        # surfaces seen this obliquely return nothing
_LUT_SIZE = 4096
_GAMMA_LUT = (np.linspace(0.0, 1.0, _LUT_SIZE) ** (1.0 / 2.2) * 255.0).astype(np.float32)


@dataclass(frozen=True)
class Lighting:
    """Scene lighting: one directional light (sun through a window) and a ceiling lamp."""

    direction: np.ndarray    # float64 (3,) unit vector towards the light
    sun: float
    lamp_position: np.ndarray
    lamp: float
    ambient: float
    tint: np.ndarray         # float64 (3,) white balance of the scene


def random_lighting(rng: np.random.Generator, lamp_position: np.ndarray) -> Lighting:
    """Draw a random light direction, strengths, ambient level and colour tint."""
    azimuth, elevation = rng.uniform(0, 2 * np.pi), rng.uniform(np.deg2rad(25), np.deg2rad(75))
    direction = np.array([np.cos(elevation) * np.cos(azimuth),
                          np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    return Lighting(direction, float(rng.uniform(0.25, 0.55)), lamp_position,
                    float(rng.uniform(0.4, 0.9)), float(rng.uniform(0.3, 0.45)),
                    1.0 + rng.normal(0.0, 0.03, 3))


class Renderer:
    """Renders posed RGB-D frames of one scene mesh."""

    def __init__(self, mesh: SceneMesh, config: SynthConfig, lighting: Lighting) -> None:
        self.mesh = mesh
        self.config = config
        self.lighting = lighting
        self.intrinsics: CameraIntrinsics = config.intrinsics
        self._scene = o3d.t.geometry.RaycastingScene()
        self._scene.add_triangles(o3d.core.Tensor(mesh.vertices),
                                  o3d.core.Tensor(mesh.faces.astype(np.uint32)))
        # Linear-light albedo per face corner, looked up by primitive id.
        albedo = ((mesh.colors[:, :3].astype(np.float32) / 255.0) ** 2.2).astype(np.float32)
        self._corner_albedo = albedo[mesh.faces]                  # (F, 3 corners, 3)
        self._face_instance = mesh.instances[mesh.faces[:, 0]]
        k = self.intrinsics
        u, v = np.meshgrid(np.arange(k.width, dtype=np.float32),
                           np.arange(k.height, dtype=np.float32))
        # Unnormalised rays with z = 1, so the hit distance is the depth along the axis.
        self._rays_cam = np.stack([(u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones_like(u)], -1)
        # Lens vignetting: about 20 % darker in the image corners.
        r2 = ((u - k.cx) / k.width) ** 2 + ((v - k.cy) / k.height) ** 2
        self._vignette = (1.0 - 0.8 * r2).astype(np.float32)

    def cast(self, T_world_cam: np.ndarray) -> dict[str, np.ndarray]:
        """Return the raw ray-cast of one pose: depth (H, W) and hit attributes."""
        rotation = T_world_cam[:3, :3].astype(np.float32)
        directions = self._rays_cam @ rotation.T
        origins = np.broadcast_to(T_world_cam[:3, 3].astype(np.float32), directions.shape)
        rays = o3d.core.Tensor(np.ascontiguousarray(np.concatenate([origins, directions], -1)))
        hit = self._scene.cast_rays(rays)
        return {"depth": hit["t_hit"].numpy(), "ids": hit["primitive_ids"].numpy(),
                "uvs": hit["primitive_uvs"].numpy(), "normals": hit["primitive_normals"].numpy(),
                "directions": directions}

    def render(self, poses: np.ndarray, stamps_ns: list[int],
               rng: np.random.Generator) -> list[RGBDFrame]:
        """Render one frame per pose.

        :param poses: float64 (N, 4, 4) camera optical frame -> world.
        :param stamps_ns: N stamps in nanoseconds.
        :param rng: generator for exposure changes and sensor noise.
        """
        n = len(poses)
        # Auto-exposure drifts slowly: a smoothed random walk of the gain in log space.
        exposure = np.exp(gaussian_filter1d(rng.normal(0.0, 0.25, n), 4.0, mode="nearest")) \
            if n else np.ones(0)
        return [self._frame(poses[i], int(stamps_ns[i]), float(exposure[i]), rng)
                for i in range(n)]

    def _frame(self, T_world_cam: np.ndarray, stamp_ns: int, exposure: float,
               rng: np.random.Generator) -> RGBDFrame:
        hit = self.cast(T_world_cam)
        depth = hit["depth"]
        valid = np.isfinite(depth)
        ids = np.where(valid, hit["ids"], 0).astype(np.int64)
        uv = hit["uvs"]
        weights = np.stack([1.0 - uv[..., 0] - uv[..., 1], uv[..., 0], uv[..., 1]], -1)
        albedo = np.einsum("hwk,hwkc->hwc", weights, self._corner_albedo[ids])
        normals = hit["normals"]
        directions = hit["directions"]
        facing = np.einsum("hwc,hwc->hw", normals, directions)
        normals = normals * np.where(facing > 0, -1.0, 1.0).astype(np.float32)[..., None]
        # |cos| of the viewing angle; the rays have z = 1, so divide by their length.
        cos_view = np.abs(facing) / np.sqrt(np.einsum("hwc,hwc->hw", directions, directions))
        points = T_world_cam[:3, 3].astype(np.float32) + directions * np.where(
            valid, depth, 0.0)[..., None]
        light = self.lighting
        sun = light.sun * np.clip(normals @ light.direction.astype(np.float32), 0.0, None)
        to_lamp = light.lamp_position.astype(np.float32) - points
        lamp_dist2 = np.einsum("hwc,hwc->hw", to_lamp, to_lamp)
        lamp = light.lamp * np.clip(np.einsum("hwc,hwc->hw", normals, to_lamp), 0.0, None) / (
            np.sqrt(lamp_dist2) + 1e-6) / (1.0 + 0.08 * lamp_dist2)
        gain = (self._vignette * np.float32(exposure) * (light.ambient + sun + lamp))[..., None]
        linear = albedo * gain * light.tint.astype(np.float32)
        # Gamma through a lookup table: a float power per pixel costs more than the ray-cast.
        color = _GAMMA_LUT[(np.clip(linear, 0.0, 1.0) * (_LUT_SIZE - 1)).astype(np.int32)]
        color[~valid] = 0.0
        depth = np.where(valid, depth, np.nan).astype(np.float32)
        if self.config.noise:
            color += rng.standard_normal(color.shape, dtype=np.float32) * (
                2.0 + color / 64.0)
            depth = self._noisy_depth(depth, cos_view, rng)
        depth[~((depth >= self.config.min_depth_m) & (depth <= self.config.max_depth_m))] = np.nan
        frame = RGBDFrame(np.clip(color, 0, 255).round().astype(np.uint8), depth,
                          self.intrinsics, np.array(T_world_cam, dtype=np.float64), stamp_ns)
        if self.config.instance_maps:
            frame.extras["instance"] = np.where(valid, self._face_instance[ids], -1).astype(
                np.int32)
        return frame

    def _noisy_depth(self, depth: np.ndarray, cos_view: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
        sigma = _NOISE_A + _NOISE_B * np.square(np.nan_to_num(depth) - _NOISE_Z0)
        noisy = depth + rng.standard_normal(depth.shape, dtype=np.float32) * sigma
        filled = np.nan_to_num(depth, nan=0.0)
        jump = np.zeros(depth.shape, dtype=bool)
        for axis in (0, 1):
            diff = np.abs(np.diff(filled, axis=axis)) > _EDGE_JUMP * np.maximum(
                np.take(filled, range(1, filled.shape[axis]), axis=axis), 0.1)
            pad = [(0, 0), (0, 0)]
            pad[axis] = (1, 0)
            jump |= np.pad(diff, pad)
            pad[axis] = (0, 1)
            jump |= np.pad(diff, pad)
        drop = (jump & (rng.random(depth.shape, dtype=np.float32) < _EDGE_DROP_P))
        drop |= rng.random(depth.shape, dtype=np.float32) < _RANDOM_DROP_P
        drop |= cos_view < _GRAZING_COS
        noisy[drop] = np.nan
        return noisy.astype(np.float32)
