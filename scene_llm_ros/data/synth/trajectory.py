"""Hand-held camera paths: a loop through the free floor that returns to its start."""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from scene_llm_ros.data.synth.layout import Placement
from scene_llm_ros.data.synth.room import Room
from scene_llm_ros.errors import SceneLlmError

GRID_M = 0.1
WALL_MARGIN_M = 0.45      # the operator keeps this far from walls
OBJECT_MARGIN_M = 0.3     # ... and from furniture footprints


class TrajectoryError(SceneLlmError):
    """No collision-free camera path exists in the room (the message says why)."""


def free_space(room: Room, placements: list[Placement]) -> tuple[np.ndarray, np.ndarray]:
    """Return the centres (M, 2) of free floor cells and a bool grid mask over the room box."""
    lo, hi = room.polygon.min(0), room.polygon.max(0)
    xs = np.arange(lo[0] + GRID_M / 2, hi[0], GRID_M)
    ys = np.arange(lo[1] + GRID_M / 2, hi[1], GRID_M)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    points = np.column_stack([gx.ravel(), gy.ravel()])
    free = room.contains(points, margin=WALL_MARGIN_M)
    for p in placements:
        if p.support is not None or p.category.mount == "wall":
            continue
        # Inside-test against the grown oriented footprint in the object's frame.
        local = (points - p.center) @ p.rotation
        half = np.array(p.size[:2]) / 2 + OBJECT_MARGIN_M
        free &= ~np.all(np.abs(local) <= half, axis=1)
    return points, free.reshape(gx.shape)


def _grid_graph(free: np.ndarray):
    nx, ny = free.shape
    index = -np.ones(free.shape, dtype=np.int64)
    index[free] = np.arange(int(free.sum()))
    rows, cols, weights = [], [], []
    for dx, dy in ((1, 0), (0, 1), (1, 1), (1, -1)):
        a = index[max(0, -dx):nx - max(0, dx), max(0, -dy):ny - max(0, dy)]
        b = index[max(0, dx):nx - max(0, -dx) or None, max(0, dy):ny - max(0, -dy) or None]
        ok = (a >= 0) & (b >= 0)
        rows.append(a[ok])
        cols.append(b[ok])
        weights.append(np.full(int(ok.sum()), np.hypot(dx, dy)))
    n = int(free.sum())
    r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
    graph = coo_matrix((np.concatenate([w, w]), (np.concatenate([r, c]), np.concatenate([c, r]))),
                       shape=(n, n)).tocsr()
    return graph, index


def _largest_component(graph) -> np.ndarray:
    _, labels = connected_components(graph, directed=False)
    return labels == np.bincount(labels).argmax()


def plan_path(room: Room, placements: list[Placement], rng: np.random.Generator, *,
              num_waypoints: int = 5) -> np.ndarray:
    """Return a dense (K, 2) floor path visiting spread-out waypoints and returning to the first.

    :raises TrajectoryError: when the room has no connected free floor.
    """
    points, free = free_space(room, placements)
    if free.sum() < 10:
        raise TrajectoryError(f"only {int(free.sum())} free floor cells in a "
                              f"{room.room_type} of {room.area:.1f} m^2")
    graph, index = _grid_graph(free)
    cell_points = points[free.ravel()]
    keep = _largest_component(graph)
    candidates = np.flatnonzero(keep)
    # Farthest-point sampling spreads the waypoints over the free floor.
    chosen = [int(rng.choice(candidates))]
    distance = np.linalg.norm(cell_points[candidates] - cell_points[chosen[0]], axis=1)
    for _ in range(num_waypoints - 1):
        chosen.append(int(candidates[int(np.argmax(distance + rng.uniform(0, 0.3,
                                                                         len(distance))))]))
        distance = np.minimum(distance, np.linalg.norm(cell_points[candidates]
                                                      - cell_points[chosen[-1]], axis=1))
    # Visit them in angular order around the room centre: one loop, then back to the start
    # (the revisit lets SLAM and fusion see a loop closure).
    angles = np.arctan2(*(cell_points[chosen] - room.centroid).T[::-1])
    order = [chosen[i] for i in np.argsort(angles)]
    start = int(rng.integers(len(order)))
    order = order[start:] + order[:start]
    order.append(order[0])
    _, predecessors = dijkstra(graph, indices=order[:-1], return_predecessors=True)
    route: list[int] = [order[0]]
    for k in range(len(order) - 1):
        node, leg = order[k + 1], []
        while node != order[k] and node >= 0:
            leg.append(node)
            node = predecessors[k, node]
        route.extend(leg[::-1])
    return cell_points[route]


def smooth_path(path: np.ndarray, spacing: float = 0.02, sigma_m: float = 0.35) -> np.ndarray:
    """Resample ``path`` every ``spacing`` metres and smooth its grid corners away."""
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] < 1e-6:
        return path[:1]
    t = np.arange(0.0, s[-1], spacing)
    dense = np.column_stack([np.interp(t, s, path[:, 0]), np.interp(t, s, path[:, 1])])
    return gaussian_filter1d(dense, sigma_m / spacing, axis=0, mode="nearest")


def look_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """float64 (3, 3) rotation of a camera optical frame (x right, y down, z forward).

    :param yaw: heading of the optical axis about +Z, radians (0 = +X).
    :param pitch: elevation of the optical axis, radians (negative = looking down).
    :param roll: rotation about the optical axis, radians.
    """
    forward = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw),
                        np.sin(pitch)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    right, down = (np.cos(roll) * right + np.sin(roll) * down,
                   -np.sin(roll) * right + np.cos(roll) * down)
    return np.column_stack([right, down, forward])


def camera_poses(room: Room, placements: list[Placement], num_frames: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Return ``num_frames`` camera-optical-frame -> world poses and the path length.

    The operator walks a loop at 1.2-1.6 m height, looking at far parts of the room
    (the gaze moves between objects so that it sweeps every wall, which makes it turn), with
    a small roll and bob.

    :return: float64 (num_frames, 4, 4) poses and the walked distance in metres.
    """
    route = smooth_path(plan_path(room, placements, rng, num_waypoints=int(rng.integers(4, 7))))
    seg = np.linalg.norm(np.diff(route, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    length = float(s[-1])
    t = np.linspace(0.0, length, num_frames)
    xy = np.column_stack([np.interp(t, s, route[:, 0]), np.interp(t, s, route[:, 1])])
    # Gaze targets: objects (doors and pictures too) or the room centre, far from where the
    # operator stands; each next one is the one whose bearing from the room centre is farthest
    # from those already looked at, so the gaze sweeps every wall as a scan made for a
    # reconstruction does. The last target repeats the first.
    anchors = [np.array([*p.center, p.elevation + p.size[2] / 2]) for p in placements]
    anchors.append(np.array([*room.centroid, 0.8]))
    anchors = np.array(anchors)
    bearing = np.arctan2(*(anchors[:, :2] - room.centroid).T[::-1])
    n_keys = int(rng.integers(8, 12))
    key_t = np.linspace(0.0, length, n_keys)
    keys, looked = [], []
    for kt in key_t:
        here = np.array([np.interp(kt, s, route[:, 0]), np.interp(kt, s, route[:, 1])])
        dist = np.linalg.norm(anchors[:, :2] - here, axis=1)
        far = np.flatnonzero(dist >= 0.5 * dist.max())
        if looked:
            gap = np.abs(np.angle(np.exp(1j * (bearing[far, None] - np.array(looked)))))
            novelty = gap.min(axis=1) + rng.uniform(0.0, 0.3, len(far))
            choice = int(far[int(np.argmax(novelty))])
        else:
            choice = int(rng.choice(far))
        looked.append(bearing[choice])
        keys.append(anchors[choice])
    keys[-1] = keys[0]
    keys = np.array(keys)
    focus = np.column_stack([np.interp(t, key_t, keys[:, i]) for i in range(3)])
    height_base = rng.uniform(1.2, 1.6)
    phase = rng.uniform(0.0, 2 * np.pi, 4)
    z = height_base + 0.02 * np.sin(2 * np.pi * t / 0.7 + phase[0])  # step bob
    delta = focus[:, :2] - xy
    yaw = np.unwrap(np.arctan2(delta[:, 1], delta[:, 0]))
    yaw += np.deg2rad(12.0) * np.sin(2 * np.pi * t / 3.0 + phase[1])  # scanning sway
    pitch = np.arctan2(focus[:, 2] - z, np.linalg.norm(delta, axis=1))
    pitch = np.clip(pitch, np.deg2rad(-40), np.deg2rad(5)) - np.deg2rad(5)
    roll = np.deg2rad(2.5) * np.sin(2 * np.pi * t / 4.0 + phase[2])
    # Heads turn smoothly: low-pass the angles over about 0.4 m of walking.
    sigma = max(1.0, 0.4 / max(length / max(num_frames - 1, 1), 1e-6))
    yaw, pitch = gaussian_filter1d(yaw, sigma, mode="nearest"), gaussian_filter1d(
        pitch, sigma, mode="nearest")
    poses = np.tile(np.eye(4), (num_frames, 1, 1))
    for i in range(num_frames):
        poses[i, :3, :3] = look_rotation(yaw[i], pitch[i], roll[i])
        poses[i, :3, 3] = (xy[i, 0], xy[i, 1], z[i])
    return poses, length
