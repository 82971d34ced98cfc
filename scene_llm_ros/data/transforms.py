"""Rigid-transform math: quaternions, SE(3) matrices and their interpolation.

Quaternions are ``(x, y, z, w)`` like ROS messages; transforms are float64 (4, 4) matrices
``T_a_b`` mapping points in frame ``b`` to frame ``a`` (see :mod:`scene_llm_ros.data.types`).
"""
from __future__ import annotations

import numpy as np

#: Rotation of an optical frame (x right, y down, z forward) in its REP-103 body frame
#: (x forward, y left, z up): optical z = body x, optical x = -body y, optical y = -body z.
#: The columns are the optical axes expressed in the body frame.
R_BODY_OPTICAL = np.array([[0.0, 0.0, 1.0],
                           [-1.0, 0.0, 0.0],
                           [0.0, -1.0, 0.0]])


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a quaternion.

    :param q: ``(x, y, z, w)``; normalised here, so any non-zero scale is accepted.
    :return: float64 (3, 3) rotation matrix.
    :raises ValueError: if ``q`` is not 4 finite values with a non-zero norm.
    """
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    norm = np.linalg.norm(q) if q.shape == (4,) else 0.0
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"quaternion must be 4 finite values with non-zero norm, got {q}")
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Unit quaternion of a rotation matrix (Shepperd's method, stable for every angle).

    :param R: (3, 3) rotation matrix (or a (4, 4) transform, whose rotation block is used).
    :return: float64 ``(x, y, z, w)`` with ``w >= 0``.
    """
    R = np.asarray(R, dtype=np.float64)[:3, :3]
    trace = R[0, 0] + R[1, 1] + R[2, 2]
    # Divide by the largest of the four candidate components to avoid cancellation.
    if trace > max(R[0, 0], R[1, 1], R[2, 2]):
        s = 2.0 * np.sqrt(1.0 + trace)
        q = np.array([(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s,
                      (R[1, 0] - R[0, 1]) / s, 0.25 * s])
    elif R[0, 0] >= R[1, 1] and R[0, 0] >= R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = np.array([0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s,
                      (R[2, 1] - R[1, 2]) / s])
    elif R[1, 1] >= R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = np.array([(R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s,
                      (R[0, 2] - R[2, 0]) / s])
    else:
        s = 2.0 * np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = np.array([(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s,
                      (R[1, 0] - R[0, 1]) / s])
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def make_transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Build ``T`` from a (3, 3) rotation matrix or an ``(x, y, z, w)`` quaternion and a 3-vector.

    :return: float64 (4, 4) transform.
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(rotation) if rotation.shape == (4,) else rotation
    T[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return T


def invert_transform(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform, using the transpose of the rotation (no general inverse)."""
    T = np.asarray(T, dtype=np.float64)
    inv = np.eye(4)
    inv[:3, :3] = T[:3, :3].T
    inv[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return inv


def slerp(q0: np.ndarray, q1: np.ndarray, alpha: float) -> np.ndarray:
    """Spherical linear interpolation between unit quaternions along the shorter arc.

    :param alpha: 0 gives ``q0``, 1 gives ``q1``.
    :return: float64 unit quaternion ``(x, y, z, w)``.
    """
    q0 = np.asarray(q0, dtype=np.float64) / np.linalg.norm(q0)
    q1 = np.asarray(q1, dtype=np.float64) / np.linalg.norm(q1)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:  # q and -q are the same rotation; flip to take the short way round
        q1, dot = -q1, -dot
    if dot > 0.9995:
        # Nearly parallel: sin(theta) ~ 0, so normalised lerp is the accurate choice.
        q = q0 + alpha * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1.0 - alpha) * theta) * q0 + np.sin(alpha * theta) * q1) / np.sin(theta)


def interpolate_transform(T0: np.ndarray, T1: np.ndarray, alpha: float) -> np.ndarray:
    """Interpolate two transforms: slerp of the rotation, linear in the translation.

    This is what tf2 does between two stamped transforms of one edge.

    :param alpha: 0 gives ``T0``, 1 gives ``T1``; values outside [0, 1] extrapolate.
    :return: float64 (4, 4) transform.
    """
    q = slerp(matrix_to_quaternion(T0), matrix_to_quaternion(T1), alpha)
    t = (1.0 - alpha) * np.asarray(T0)[:3, 3] + alpha * np.asarray(T1)[:3, 3]
    return make_transform(q, t)
