"""Accuracy of a fused surface against a ground-truth mesh (median error, completeness)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d
import open3d.core as o3c
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class SurfaceAccuracy:
    """How well fused points match the true surface.

    :ivar median_error_m: median distance from fused points to the ground-truth mesh.
    :ivar p90_error_m: 90th percentile of the same distances.
    :ivar completeness: fraction of observed ground-truth surface samples that have a fused
        point within ``threshold_m``.
    :ivar threshold_m: the completeness distance.
    :ivar fused_points: number of fused points evaluated.
    """

    median_error_m: float
    p90_error_m: float
    completeness: float
    threshold_m: float
    fused_points: int


def surface_accuracy(fused_points: np.ndarray, mesh_vertices: np.ndarray,
                     mesh_faces: np.ndarray, observed_points: np.ndarray, *,
                     threshold_m: float = 0.05) -> SurfaceAccuracy:
    """Compare fused points with the mesh they were observed from.

    :param fused_points: float (N, 3) surface points extracted from the fusion, metres.
    :param mesh_vertices: float (V, 3) ground-truth mesh in the same frame.
    :param mesh_faces: int (F, 3) triangle indices.
    :param observed_points: float (M, 3) samples of the surface the cameras actually saw
        (e.g. back-projected noise-free depth), so unseen surface does not count as missing.
    :param threshold_m: distance under which an observed sample counts as reconstructed.
    """
    if len(fused_points) == 0:
        return SurfaceAccuracy(float("inf"), float("inf"), 0.0, threshold_m, 0)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3c.Tensor(np.asarray(mesh_vertices, np.float32)),
                        o3c.Tensor(np.asarray(mesh_faces, np.uint32)))
    distances = scene.compute_distance(
        o3c.Tensor(np.asarray(fused_points, np.float32))).numpy()
    nearest, _ = cKDTree(fused_points).query(observed_points, k=1)
    return SurfaceAccuracy(float(np.median(distances)), float(np.percentile(distances, 90)),
                           float(np.mean(nearest <= threshold_m)), threshold_m,
                           int(len(fused_points)))
