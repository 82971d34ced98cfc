"""3D visual grounding scores: ScanRefer Acc@k and Multi3DRefer F1@k.

Boxes are axis-aligned, given as (N, 6) arrays of centre (x, y, z) and full size (sx, sy, sz)
in metres (vision_msgs/BoundingBox3D semantics), and compared with
:func:`scene_llm_ros.geometry.boxes.pairwise_box_iou`.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment

from scene_llm_ros.geometry.boxes import pairwise_box_iou

#: IoU thresholds reported by ScanRefer, Multi3DRefer and Scan2Cap.
IOU_THRESHOLDS = (0.25, 0.5)


def as_boxes(boxes: ArrayLike | None, what: str) -> np.ndarray:
    """``boxes`` as a float (N, 6) array of centre + full size; None means no boxes.

    :param what: names the boxes in the error message.
    :raises ValueError: when the shape is not (N, 6), a value is not finite or a size is
        negative.
    """
    if boxes is None:
        return np.zeros((0, 6))
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 1 and array.size == 6:
        array = array.reshape(1, 6)
    if array.size == 0:
        return np.zeros((0, 6))
    if array.ndim != 2 or array.shape[1] != 6:
        raise ValueError(f"{what} must be (N, 6) centre + size boxes, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contain non-finite values: {array.tolist()}")
    if np.any(array[:, 3:] < 0):
        raise ValueError(f"{what} have negative sizes: {array[:, 3:].tolist()}")
    return array


def iou_matrix(predicted: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """(P, G) IoU matrix of (P, 6) predicted and (G, 6) ground-truth boxes."""
    if len(predicted) == 0 or len(ground_truth) == 0:
        return np.zeros((len(predicted), len(ground_truth)))
    return pairwise_box_iou(predicted[:, :3], predicted[:, 3:], ground_truth[:, :3],
                            ground_truth[:, 3:])


def top1_iou(predicted: np.ndarray, ground_truth: np.ndarray) -> float:
    """IoU of the first predicted box with the single target box (0 when nothing predicted).

    ScanRefer scores exactly one predicted box per description.

    :raises ValueError: when there is not exactly one ground-truth box.
    """
    if len(ground_truth) != 1:
        raise ValueError(f"ScanRefer needs exactly one ground-truth box, got {len(ground_truth)}")
    if len(predicted) == 0:
        return 0.0
    return float(iou_matrix(predicted[:1], ground_truth)[0, 0])


def matched_f1(predicted: np.ndarray, ground_truth: np.ndarray,
               thresholds: tuple[float, ...] = IOU_THRESHOLDS) -> dict[float, float]:
    """Multi3DRefer F1 of one description at each IoU threshold.

    One Hungarian matching maximises the total IoU between predicted and ground-truth boxes; a
    matched pair is a true positive at threshold k when its IoU >= k, and
    F1 = 2 TP / (#predicted + #ground truth). With no ground-truth box (a zero-target
    description) F1 is 1 when nothing is predicted and 0 otherwise.
    """
    if len(ground_truth) == 0:
        return {k: float(len(predicted) == 0) for k in thresholds}
    if len(predicted) == 0:
        return {k: 0.0 for k in thresholds}
    ious = iou_matrix(predicted, ground_truth)
    rows, cols = linear_sum_assignment(ious, maximize=True)
    matched = ious[rows, cols]
    total = len(predicted) + len(ground_truth)
    return {k: 2.0 * float(np.count_nonzero(matched >= k)) / total for k in thresholds}
