import numpy as np
import pytest

from scene_llm_ros.geometry.boxes import (
    box_corners,
    box_from_corners,
    box_iou,
    box_of_points,
    pairwise_box_iou,
)


def test_iou_of_known_overlaps():
    unit = (np.zeros(3), np.ones(3))
    assert box_iou(*unit, *unit) == pytest.approx(1.0)
    # Shifted by half along x: intersection 0.5, union 1.5.
    assert box_iou(*unit, np.array([0.5, 0, 0]), np.ones(3)) == pytest.approx(1 / 3)
    # Touching faces do not overlap.
    assert box_iou(*unit, np.array([1.0, 0, 0]), np.ones(3)) == 0.0
    # A box inside a box twice its size: 1 / 8.
    assert box_iou(*unit, np.zeros(3), np.full(3, 2.0)) == pytest.approx(1 / 8)
    assert box_iou(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3)) == 0.0


def test_pairwise_matches_elementwise_and_corners_round_trip():
    rng = np.random.default_rng(0)
    ca, sa = rng.normal(size=(4, 3)), rng.uniform(0.1, 2, size=(4, 3))
    cb, sb = rng.normal(size=(5, 3)), rng.uniform(0.1, 2, size=(5, 3))
    matrix = pairwise_box_iou(ca, sa, cb, sb)
    assert matrix.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            assert matrix[i, j] == pytest.approx(box_iou(ca[i], sa[i], cb[j], sb[j]))
    center, size = box_from_corners(*box_corners(ca, sa))
    np.testing.assert_allclose(center, ca)
    np.testing.assert_allclose(size, sa)


def test_box_of_points():
    center, size = box_of_points(np.array([[0, 0, 0], [2, 1, 4], [1, -1, 2]]))
    np.testing.assert_allclose(center, [1, 0, 2])
    np.testing.assert_allclose(size, [2, 2, 4])
    with pytest.raises(ValueError, match="no points"):
        box_of_points(np.zeros((0, 3)))
