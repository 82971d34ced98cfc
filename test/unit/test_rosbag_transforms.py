"""Quaternion/matrix conversion and SE(3) interpolation in scene_llm_ros.data.transforms."""
from __future__ import annotations

import numpy as np
import pytest

from scene_llm_ros.data.transforms import (
    R_BODY_OPTICAL,
    interpolate_transform,
    invert_transform,
    make_transform,
    matrix_to_quaternion,
    quaternion_to_matrix,
    slerp,
)


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_quaternion_matrix_round_trip_covers_every_branch():
    rng = np.random.default_rng(1)
    # Random rotations plus 180-degree turns about each axis, which hit the non-trace branches.
    quats = [q / np.linalg.norm(q) for q in rng.normal(size=(200, 4))]
    quats += [np.array(q, float) for q in ([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0])]
    for q in quats:
        R = quaternion_to_matrix(q)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        q2 = matrix_to_quaternion(R)
        assert q2[3] >= 0
        np.testing.assert_allclose(q2, q if q[3] >= 0 else -q, atol=1e-12)


def test_quaternion_convention_is_xyzw():
    angle = 0.3
    q = np.array([0.0, 0.0, np.sin(angle / 2), np.cos(angle / 2)])
    np.testing.assert_allclose(quaternion_to_matrix(q), _rot_z(angle), atol=1e-15)


def test_bad_quaternion_raises():
    with pytest.raises(ValueError, match="quaternion"):
        quaternion_to_matrix([0, 0, 0, 0])
    with pytest.raises(ValueError, match="quaternion"):
        quaternion_to_matrix([0, 0, 1])


def test_invert_transform():
    T = make_transform(np.array([0.1, -0.4, 0.2, 0.9]), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(invert_transform(T) @ T, np.eye(4), atol=1e-12)


def test_optical_rotation_follows_rep103():
    # Optical z (forward) is body x, optical x (right) is -body y, optical y (down) is -body z.
    np.testing.assert_array_equal(R_BODY_OPTICAL @ [0, 0, 1], [1, 0, 0])
    np.testing.assert_array_equal(R_BODY_OPTICAL @ [1, 0, 0], [0, -1, 0])
    np.testing.assert_array_equal(R_BODY_OPTICAL @ [0, 1, 0], [0, 0, -1])
    assert np.linalg.det(R_BODY_OPTICAL) == 1.0


def test_interpolation_slerps_rotation_and_lerps_translation():
    T0 = make_transform(_rot_z(0.0), [0.0, 0.0, 0.0])
    T1 = make_transform(_rot_z(np.pi / 2), [1.0, -2.0, 4.0])
    mid = interpolate_transform(T0, T1, 0.25)
    np.testing.assert_allclose(mid[:3, :3], _rot_z(np.pi / 8), atol=1e-12)
    np.testing.assert_allclose(mid[:3, 3], [0.25, -0.5, 1.0], atol=1e-12)
    np.testing.assert_allclose(interpolate_transform(T0, T1, 0.0), T0, atol=1e-12)
    np.testing.assert_allclose(interpolate_transform(T0, T1, 1.0), T1, atol=1e-12)


def test_slerp_takes_the_short_arc():
    q0 = matrix_to_quaternion(_rot_z(np.radians(170)))
    q1 = -matrix_to_quaternion(_rot_z(np.radians(-170)))  # same rotation, opposite sign
    mid = quaternion_to_matrix(slerp(q0, q1, 0.5))
    np.testing.assert_allclose(mid, _rot_z(np.pi), atol=1e-12)
