"""`scene-llm bag` converts a ScanNet-format scene folder into a bag the reader accepts."""
from __future__ import annotations

import numpy as np
from rosbag_testutil import make_frames

from scene_llm_ros.cli import main
from scene_llm_ros.data.rosbag import RGBDBagReader, inspect_bag
from scene_llm_ros.data.scannet import read_exported_frames, write_exported_frames


def _scene(tmp_path, n: int = 6):
    frames = make_frames(n)
    scene_dir = tmp_path / "scans" / "scene9999_00"
    write_exported_frames(scene_dir / "frames", frames)
    return scene_dir, frames


def test_cli_converts_exported_frames(tmp_path):
    scene_dir, frames = _scene(tmp_path)
    bag = tmp_path / "out_bag"
    assert main(["bag", str(scene_dir), str(bag), "--storage", "sqlite3", "--every-nth", "2",
                 "--depth-encoding", "32FC1"]) == 0
    info = inspect_bag(bag)
    assert info.storage == "sqlite3"
    assert info.topics["/camera/color/image_raw"].message_count == 3
    reader = RGBDBagReader(bag)
    got = list(reader)
    assert len(got) == 3
    # Exported frames are stamped index / 30 fps; index 0 moves to 1 s (0 means "latest" to tf2).
    assert [g.stamp_ns for g in got] == [10**9 + round(i * 1e9 / 30) for i in (0, 2, 4)]
    exported = list(read_exported_frames(scene_dir / "frames", every_nth=2))
    for g, x, e in zip(got, exported, frames[::2], strict=True):
        np.testing.assert_array_equal(np.isnan(g.depth), np.isnan(e.depth))
        np.testing.assert_array_equal(np.round(g.depth * 1000), np.round(e.depth * 1000))
        # The export's JPEG is lossy; the bag carries exactly what the export reader decodes.
        np.testing.assert_array_equal(g.color, x.color)
        np.testing.assert_allclose(g.T_world_cam, e.T_world_cam, atol=1e-6)


def test_cli_fps_and_refusals(tmp_path):
    scene_dir, _ = _scene(tmp_path, n=3)
    bag = tmp_path / "bag"
    assert main(["bag", str(scene_dir), str(bag), "--fps", "10", "--color-encoding",
                 "bgr8"]) == 0
    reader = RGBDBagReader(bag)
    assert [f.stamp_ns for f in reader] == [10**9, 11 * 10**8, 12 * 10**8]
    assert main(["bag", str(scene_dir), str(bag)]) == 1  # exists already
    assert main(["bag", str(tmp_path / "nothing"), str(tmp_path / "b2")]) == 1
    assert not (tmp_path / "b2").exists()
