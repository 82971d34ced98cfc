"""The live ingest pipeline: messages in (any thread), integrated frames out (worker thread)."""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from scene_llm_ros.data.rosbag import messages as m
from scene_llm_ros.data.types import RGBDFrame
from scene_llm_ros.errors import InvalidFrameError
from scene_llm_ros.fusion.scene import IntegrationResult, SceneFusion
from scene_llm_ros.geometry.tf_buffer import TransformLookupError
from scene_llm_ros.ingest.config import IngestConfig
from scene_llm_ros.ingest.drops import DropCounter, DropReason
from scene_llm_ros.ingest.poses import PoseFrameError, PoseLookup
from scene_llm_ros.ingest.sync import ApproximatePairSync, CameraInfoCache, Stamped

logger = logging.getLogger(__name__)

_COLOR, _DEPTH = 0, 1
_WINDOW = 100  # integrations averaged in the timing statistics
_LOG_PERIOD_S = 5.0
# A frame may come this fraction of a period early and still pass the rate limit (jitter).
_RATE_SLACK = 0.95
# Any pose at all, however old: tells a stale pose from a missing one.
_ANY_AGE_NS = 10**18


@dataclass(frozen=True)
class _Pending:
    color: Any
    depth: Any
    stamp_ns: int
    arrived: float


@dataclass(frozen=True)
class IngestStats:
    """Counters and timings of the pipeline.

    :ivar frames_received: colour images received (each one a candidate frame).
    :ivar frames_integrated: frames fused into the scene.
    :ivar drops: drop counts by reason name (every reason present).
    :ivar queued: frames waiting for a pose or the integrator right now.
    :ivar integrate_ms: mean wall time of the last integrations (geometry + patches).
    :ivar latency_ms: mean time from a frame's synchronisation to the end of its integration.
    """

    frames_received: int
    frames_integrated: int
    drops: dict[str, int]
    queued: int
    integrate_ms: float
    latency_ms: float

    @property
    def frames_dropped(self) -> int:
        return sum(self.drops.values())


class IngestPipeline:
    """Synchronises colour, depth and camera info, poses frames and feeds :class:`SceneFusion`.

    The ``add_*`` methods only buffer and check headers, so subscription callbacks never block;
    a worker thread started by :meth:`start` waits for poses, decodes and integrates. Every
    frame not integrated is counted under a :class:`DropReason` and logged (throttled).

    :param fusion: the scene to fuse into.
    :param poses: pose lookups at image stamps (TF or a pose topic).
    :param config: synchronisation, queueing and pose settings.
    :param on_integrated: called in the worker thread after each integration (also settable
        later as the ``on_integrated`` attribute, e.g. by a benchmark).
    """

    def __init__(self, fusion: SceneFusion, poses: PoseLookup, config: IngestConfig | None = None,
                 *, on_integrated: Callable[[RGBDFrame, IntegrationResult], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.fusion = fusion
        self.poses = poses
        self.config = config or IngestConfig()
        self.on_integrated = on_integrated
        self._clock = clock
        self.drops = DropCounter()
        self._last_log: dict[DropReason, float] = {}
        self._lock = threading.Condition()
        slop_ns = int(self.config.slop_s * 1e9)
        self._sync = ApproximatePairSync(slop_ns, self.config.sync_buffer_size, self._unpaired)
        self._infos = CameraInfoCache(slop_ns)
        self._queue: collections.deque[_Pending] = collections.deque()
        self._newest_stamp = {_COLOR: None, _DEPTH: None}
        self._last_accepted_ns: int | None = None
        self._received = 0
        self._integrated = 0
        self._busy = False
        self._integrate_ms: collections.deque[float] = collections.deque(maxlen=_WINDOW)
        self._latency_ms: collections.deque[float] = collections.deque(maxlen=_WINDOW)
        self._worker: threading.Thread | None = None
        self._running = False

    # -- producers (subscription callbacks) ----------------------------------------------------

    def add_color(self, msg: Any) -> None:
        """A colour ``sensor_msgs/Image``."""
        with self._lock:
            self._received += 1
            self._add_image(_COLOR, msg)

    def add_depth(self, msg: Any) -> None:
        """A depth ``sensor_msgs/Image`` registered to the colour image."""
        with self._lock:
            self._add_image(_DEPTH, msg)

    def add_camera_info(self, msg: Any) -> None:
        """A ``sensor_msgs/CameraInfo`` of the colour camera."""
        with self._lock:
            self._infos.add(m.stamp_to_ns(msg.header.stamp), msg)

    def add_synchronized(self, color: Any, depth: Any, info: Any) -> None:
        """A colour/depth/info set already synchronised elsewhere (message_filters)."""
        with self._lock:
            self._received += 1
            self._infos.add(m.stamp_to_ns(info.header.stamp), info)
            self._accept(color, depth)

    def pose_arrived(self) -> None:
        """Wake the worker: frames waiting for a pose may now have one."""
        with self._lock:
            self._lock.notify_all()

    def _add_image(self, stream: int, msg: Any) -> None:
        stamp_ns = m.stamp_to_ns(msg.header.stamp)
        newest = self._newest_stamp[stream]
        if newest is not None and stamp_ns < newest - self.config.time_jump_s * 1e9:
            self._time_jumped(stream, stamp_ns, newest)
            if stream == _COLOR:
                self._drop(DropReason.TIME_JUMP,
                           f"stamp went back {(newest - stamp_ns) * 1e-9:.3f} s")
                return
        self._newest_stamp[stream] = max(stamp_ns, self._newest_stamp[stream] or stamp_ns)
        for color, depth in self._sync.add(stream, stamp_ns, msg):
            self._accept(color, depth)

    def _time_jumped(self, stream: int, stamp_ns: int, newest: int) -> None:
        # Clear the image history, keep the map (same place). The pose sources forget their own
        # history when their stamps jump: clearing them here would also drop the poses of the
        # new loop that arrived before this image.
        logger.warning("time jumped back %.3f s on the %s stream: clearing buffered frames",
                       (newest - stamp_ns) * 1e-9,
                       "colour" if stream == _COLOR else "depth")
        stale = len(self._queue) + self._sync.buffered(_COLOR)
        self._sync.clear()
        self._queue.clear()
        self._newest_stamp = {_COLOR: None, _DEPTH: None}
        self._newest_stamp[stream] = stamp_ns
        self._last_accepted_ns = None
        if stale:
            self.drops.add(DropReason.TIME_JUMP, stale)

    def _unpaired(self, stream: int, item: Stamped) -> None:
        if stream == _COLOR:
            self._drop(DropReason.UNSYNCHRONIZED,
                       f"colour image at {item.stamp_ns} ns has no depth image within "
                       f"{self.config.slop_s * 1e3:.0f} ms")

    def _accept(self, color: Any, depth: Any) -> None:
        """Header checks of a colour/depth pair; queue it for the worker if it passes."""
        stamp_ns = m.stamp_to_ns(color.header.stamp)
        reason, detail = self._check(color, depth, stamp_ns)
        if reason is not None:
            self._drop(reason, detail)
            return
        self._last_accepted_ns = stamp_ns
        if len(self._queue) >= self.config.queue_size:
            self._queue.popleft()
            self._drop(DropReason.QUEUE_FULL, f"more than {self.config.queue_size} frames "
                       "waiting for a pose or the integrator; dropped the oldest")
        self._queue.append(_Pending(color, depth, stamp_ns, self._clock()))
        self._lock.notify_all()

    def _check(self, color: Any, depth: Any, stamp_ns: int) -> tuple[DropReason | None, str]:
        c = self.config
        if color.encoding not in m.COLOR_ENCODINGS:
            return DropReason.BAD_ENCODING, (f"colour encoding {color.encoding!r} is not one of "
                                             f"{', '.join(m.COLOR_ENCODINGS)}")
        if depth.encoding not in m.DEPTH_ENCODINGS:
            return DropReason.BAD_ENCODING, (f"depth encoding {depth.encoding!r} is not one of "
                                             f"{', '.join(m.DEPTH_ENCODINGS)}")
        if c.camera_frame and color.header.frame_id != c.camera_frame:
            return DropReason.FRAME_CHANGE, (f"image frame {color.header.frame_id!r} is not the "
                                             f"configured camera frame {c.camera_frame!r}")
        if not _same_aspect(color.width, color.height, depth.width, depth.height):
            return DropReason.SIZE_MISMATCH, (f"colour {color.width}x{color.height} and depth "
                                              f"{depth.width}x{depth.height} cannot be registered")
        if (c.max_rate_hz > 0 and self._last_accepted_ns is not None
                and stamp_ns - self._last_accepted_ns < _RATE_SLACK * 1e9 / c.max_rate_hz):
            return DropReason.RATE_LIMIT, f"above max_rate_hz={c.max_rate_hz}"
        return None, ""

    def _camera_info(self, pending: _Pending) -> tuple[Any, DropReason | None, str]:
        """The frame's CameraInfo, or why it cannot be used (None, None while it may come)."""
        info = self._infos.match(pending.stamp_ns)
        if info is None:
            if not len(self._infos):
                return None, DropReason.NO_CAMERA_INFO, "no CameraInfo received"
            return None, DropReason.UNSYNCHRONIZED, "no CameraInfo within the slop of the image"
        try:
            m.info_to_intrinsics(info)
        except InvalidFrameError as exc:
            return None, DropReason.BAD_INTRINSICS, f"CameraInfo unusable: {exc}"
        color = pending.color
        if not _same_aspect(color.width, color.height, info.width, info.height):
            return None, DropReason.BAD_INTRINSICS, (
                f"CameraInfo is for {info.width}x{info.height}, the image is "
                f"{color.width}x{color.height}")
        return info, None, ""

    def _drop(self, reason: DropReason, detail: str) -> None:
        self.drops.add(reason)
        now = self._clock()
        if now - self._last_log.get(reason, -np.inf) >= _LOG_PERIOD_S:
            self._last_log[reason] = now
            logger.warning("dropping frame (%s): %s [%d so far]", reason.value, detail,
                           self.drops.counts()[reason.value])

    # -- worker -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self._lock:
            if self._running:
                return
            self._running = True
        self._worker = threading.Thread(target=self._run, name="scene-ingest", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker after the frame it is integrating; queued frames stay queued."""
        with self._lock:
            self._running = False
            self._lock.notify_all()
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None

    def clear(self) -> None:
        """Drop buffered and queued frames silently (the scene was reset or reloaded)."""
        with self._lock:
            self._sync.clear()
            self._queue.clear()
            self._last_accepted_ns = None

    def wait_until_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or being integrated; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.05))
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                item = self._next_posed()
                if item is None:
                    return
                pending, info, T_world_cam = item
                self._busy = True
            try:
                self._integrate(pending, info, T_world_cam)
            except Exception:  # noqa: BLE001 - one bad frame must not end the worker
                logger.exception("integrating the frame at %d ns failed", pending.stamp_ns)
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()

    def _next_posed(self) -> tuple[_Pending, Any, np.ndarray] | None:
        """The oldest queued frame with its camera info and pose (waits for both up to
        ``pose_wait_s``); None when stopped. Holds the lock."""
        while self._running:
            if not self._queue:
                self._lock.wait(0.1)
                continue
            pending = self._queue[0]
            waited = self._clock() - pending.arrived
            patient = waited < self.config.pose_wait_s
            info, reason, detail = self._camera_info(pending)
            if info is None:
                if patient and reason is not DropReason.BAD_INTRINSICS:
                    self._lock.wait(min(0.01, self.config.pose_wait_s - waited))
                    continue
                self._queue.popleft()
                self._drop(reason, detail)
                continue
            camera_frame = pending.color.header.frame_id
            try:
                T = self.poses.lookup(camera_frame, pending.stamp_ns, 0)
            except PoseFrameError as exc:
                self._queue.popleft()
                self._drop(DropReason.FRAME_CHANGE, str(exc))
                continue
            except TransformLookupError as exc:
                if patient:
                    self._lock.wait(min(0.01, self.config.pose_wait_s - waited))
                    continue
                T = self._late_pose(pending, camera_frame, exc)
            self._queue.popleft()
            if T is not None:
                return pending, info, T
        return None

    def _late_pose(self, pending: _Pending, camera_frame: str,
                   exc: TransformLookupError) -> np.ndarray | None:
        tolerance_ns = int(self.config.pose_tolerance_s * 1e9)
        try:
            return self.poses.lookup(camera_frame, pending.stamp_ns, tolerance_ns)
        except TransformLookupError:
            pass
        try:
            self.poses.lookup(camera_frame, pending.stamp_ns, _ANY_AGE_NS)
        except TransformLookupError:
            self._drop(DropReason.NO_POSE, f"no pose of {camera_frame!r} after waiting "
                       f"{self.config.pose_wait_s:.2f} s: {exc}")
        else:
            self._drop(DropReason.STALE_POSE, f"the nearest pose of {camera_frame!r} is more "
                       f"than {self.config.pose_tolerance_s:.3f} s from the image: {exc}")
        return None

    def _integrate(self, pending: _Pending, info: Any, T_world_cam: np.ndarray) -> None:
        try:
            # The frame is fused before the messages go, so their pixels are read in place.
            color = m.image_to_color(pending.color, copy=False)
            depth = m.image_to_depth(pending.depth, keep_millimetres=True)
        except ValueError as exc:
            self._drop(DropReason.BAD_ENCODING, f"cannot decode: {exc}")
            return
        height, width = color.shape[:2]
        if depth.shape != (height, width):
            # Registered depth at another resolution: nearest neighbour invents no surfaces.
            depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
        intrinsics = m.info_to_intrinsics(info)
        if (intrinsics.width, intrinsics.height) != (width, height):
            intrinsics = intrinsics.resized(width, height)
        frame = RGBDFrame(color=color, depth=depth, intrinsics=intrinsics,
                          T_world_cam=T_world_cam, stamp_ns=pending.stamp_ns,
                          frame_id=pending.color.header.frame_id)
        try:
            result = self.fusion.integrate(frame)
        except InvalidFrameError as exc:
            self._drop(DropReason.BAD_DEPTH, str(exc))
            return
        with self._lock:
            self._integrated += 1
            self._integrate_ms.append(result.integrate_ms + result.patch_ms)
            self._latency_ms.append((self._clock() - pending.arrived) * 1e3)
        if self.on_integrated is not None:
            self.on_integrated(frame, result)

    # -- statistics -------------------------------------------------------------------------

    def stats(self) -> IngestStats:
        with self._lock:
            return IngestStats(
                frames_received=self._received, frames_integrated=self._integrated,
                drops=self.drops.counts(), queued=len(self._queue) + int(self._busy),
                integrate_ms=float(np.mean(self._integrate_ms)) if self._integrate_ms else 0.0,
                latency_ms=float(np.mean(self._latency_ms)) if self._latency_ms else 0.0)


def _same_aspect(width_a: int, height_a: int, width_b: int, height_b: int) -> bool:
    """Whether two image sizes can be the same view at different resolutions (1% slack)."""
    if min(width_a, height_a, width_b, height_b) <= 0:
        return False
    return abs(width_a * height_b - width_b * height_a) <= 0.01 * width_a * height_b
