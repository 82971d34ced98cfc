"""Pictures of an evaluation (matplotlib, Agg): the fused map from above with boxes, and each
grounding answer's mask and box over its reference camera image."""
from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scene_llm_ros.evaluation.answers import AskResult, ReferenceCamera

PRED_COLOR = "#ff3b30"
GT_COLOR = "#34c759"
_MASK_RGB = np.array([255, 59, 48], np.float32)
_MASK_ALPHA = 0.45
_MAX_TOPDOWN_POINTS = 200_000  # enough for a room at 4 cm; keeps the PNG quick to draw
# The 12 edges of a box as index pairs of its corners (corner i has bit k set = max on axis k).
_EDGES = [(a, b) for a in range(8) for b in range(8)
          if a < b and bin(a ^ b).count("1") == 1]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on robots or CI machines
    import matplotlib.pyplot as plt

    return plt


def picture_name(question_id: str) -> str:
    """A file name for a question id (``/``, ``|`` and the like become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", question_id).strip("._") or "question"


@dataclass(frozen=True)
class LabelledBox:
    """A box to draw: float (6,) centre + full size in the scene frame, and a short label."""

    box: np.ndarray
    label: str


def box_corners(box: np.ndarray) -> np.ndarray:
    """float64 (8, 3) corners of a centre + size box; corner i is at max along axis k when
    bit k of i is set."""
    box = np.asarray(box, np.float64)
    bits = (np.arange(8)[:, None] >> np.arange(3)) & 1
    return box[:3] - box[3:] / 2 + bits * box[3:]


def project_box(box: np.ndarray, camera: ReferenceCamera) -> list[np.ndarray]:
    """The box's edges in the camera image as (2, 2) pixel segments, clipped to the part in
    front of the camera (edges fully behind it are left out).

    :param box: centre + size in the scene frame.
    """
    T_cam_world = np.linalg.inv(camera.T_world_cam)
    corners = box_corners(box) @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]
    K = camera.intrinsics.matrix
    near = 0.05  # metres; clipping at z > 0 would send near points to infinity
    segments = []
    for a, b in _EDGES:
        p, q = corners[a], corners[b]
        if p[2] < near and q[2] < near:
            continue
        if p[2] < near or q[2] < near:
            # Cut the edge where it crosses the near plane.
            t = (near - p[2]) / (q[2] - p[2])
            cut = p + t * (q - p)
            p, q = (cut, q) if p[2] < near else (p, cut)
        pixels = np.stack([p, q]) @ K.T
        segments.append(pixels[:, :2] / pixels[:, 2:3])
    return segments


def draw_topdown(path: str | Path, points: np.ndarray, colors: np.ndarray, *,
                 predicted: Sequence[LabelledBox], ground_truth: Sequence[LabelledBox],
                 voxel_size_m: float = 0.04, title: str = "") -> Path:
    """The fused surface seen from above (+Z up), with predicted and ground-truth boxes.

    :param points: float32 (N, 3) surface points, scene frame, metres.
    :param colors: uint8 (N, 3) RGB.
    :param voxel_size_m: spacing of the points; each is drawn as a square of that size so
        the map looks solid at any room size.
    :return: the written path.
    """
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(8, 8), dpi=100)
    try:
        if len(points):
            if len(points) > _MAX_TOPDOWN_POINTS:
                keep = np.random.default_rng(0).choice(len(points), _MAX_TOPDOWN_POINTS,
                                                       replace=False)
                points, colors = points[keep], colors[keep]
            # Lowest first, so furniture tops cover the floor as seen from above.
            order = np.argsort(points[:, 2])
            extent = float(np.ptp(points[:, :2], axis=0).max()) + 2 * voxel_size_m
            axes_points = 0.8 * fig.get_size_inches()[0] * 72.0  # scatter sizes are in pt^2
            size = (voxel_size_m / max(extent, 1e-6) * axes_points) ** 2
            ax.scatter(points[order, 0], points[order, 1], c=colors[order] / 255.0,
                       s=max(size, 0.5), marker="s", linewidths=0)
        else:
            ax.text(0.5, 0.5, "empty map", ha="center", va="center", transform=ax.transAxes)
        for boxes, color, style in ((ground_truth, GT_COLOR, "-"), (predicted, PRED_COLOR, "--")):
            for item in boxes:
                cx, cy, _, sx, sy, _ = (float(v) for v in item.box)
                ax.add_patch(plt.Rectangle((cx - sx / 2, cy - sy / 2), sx, sy, fill=False,
                                           edgecolor=color, linestyle=style, linewidth=1.5))
                if item.label:
                    ax.text(cx - sx / 2, cy + sy / 2, item.label, color=color, fontsize=7,
                            va="bottom")
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        handles = [plt.Line2D([], [], color=GT_COLOR, label="ground truth"),
                   plt.Line2D([], [], color=PRED_COLOR, linestyle="--", label="predicted")]
        ax.legend(handles=handles, loc="upper right", fontsize=8)
        ax.set_title(title or "fused map from above", fontsize=10)
        ax.autoscale_view()
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def overlay_masks(image: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 (H, W, 3) ``image`` with every mask's pixels tinted (masks of another size are
    ignored: they do not belong to this image)."""
    out = image.astype(np.float32)
    for mask in masks:
        if mask is None or mask.shape != image.shape[:2]:
            continue
        selected = mask > 0
        out[selected] = (1 - _MASK_ALPHA) * out[selected] + _MASK_ALPHA * _MASK_RGB
    return out.clip(0, 255).astype(np.uint8)


def draw_grounding(path: str | Path, image: np.ndarray | None, result: AskResult, *,
                   question: str, gt_boxes: np.ndarray | None, caption: str = "") -> Path:
    """One grounding answer: the reference image with the predicted masks tinted, each mask's
    ROI, the predicted boxes (red, dashed) and the ground-truth boxes (green) projected.

    :param image: uint8 (H, W, 3) RGB reference image, None when it could not be found (a
        grey canvas of the camera's size is drawn instead).
    :param gt_boxes: float (M, 6) ground-truth boxes, scene frame, or None.
    :return: the written path.
    """
    plt = _pyplot()
    path = Path(path)
    camera = result.reference
    if image is None:
        width, height = ((camera.intrinsics.width, camera.intrinsics.height) if camera
                         else (320, 240))
        image = np.full((height, width, 3), 96, np.uint8)
    height, width = image.shape[:2]
    fig, ax = plt.subplots(figsize=(7, 7 * height / width + 1.2), dpi=100)
    try:
        ax.imshow(overlay_masks(image, [o.mask for o in result.objects]))
        if camera is not None:
            for boxes, color, style in ((gt_boxes, GT_COLOR, "-"),
                                        (result.boxes(), PRED_COLOR, "--")):
                for box in ([] if boxes is None else boxes):
                    for segment in project_box(box, camera):
                        ax.plot(segment[:, 0], segment[:, 1], color=color, linestyle=style,
                                linewidth=1.2)
        for obj in result.objects:
            x, y, w, h = obj.roi
            if w and h:
                ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), w, h, fill=False,
                                           edgecolor="yellow", linewidth=1.0))
                ax.text(x, y - 2, f"{obj.label} {obj.score:.2f}", color="yellow", fontsize=7)
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
        ax.axis("off")
        text = "\n".join(textwrap.wrap(question, 90)[:3])
        answer = result.answer if result.success else f"{result.error_code}: {result.message}"
        lines = [text, f"answer: {answer[:120]}"] + ([caption] if caption else [])
        if camera is None:
            lines.append("(no reference camera in the response)")
        ax.set_title("\n".join(lines), fontsize=8, loc="left")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
