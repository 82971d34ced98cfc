"""The generated msg/srv/action types import and carry the documented fields."""
from __future__ import annotations

import array
import re
from pathlib import Path

import numpy as np
import pytest

from scene_llm_ros.fusion.snapshot import SceneSnapshot

ROOT = Path(__file__).resolve().parents[2]


def interface_files() -> list[Path]:
    return sorted(p for d in ("msg", "srv", "action") for p in (ROOT / d).glob("*.*"))


def test_every_interface_file_is_generated_and_registered():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    for path in interface_files():
        rel = f"{path.parent.name}/{path.name}"
        assert f'"{rel}"' in cmake, f"{rel} is not listed in rosidl_generate_interfaces"
        module = __import__(f"scene_llm_ros.{path.parent.name}", fromlist=[path.stem])
        assert hasattr(module, path.stem), f"{rel} was not generated"


def test_grounded_object_fields():
    from scene_llm_ros.msg import GroundedObject
    fields = GroundedObject.get_fields_and_field_types()
    assert fields == {
        "id": "string", "label": "string", "score": "float", "bbox": "scene_llm_ros/BoundingBox3D",
        "roi": "sensor_msgs/RegionOfInterest", "mask": "sensor_msgs/Image",
        "points": "sensor_msgs/PointCloud2"}


def test_bounding_box_matches_vision_msgs_layout():
    from scene_llm_ros.msg import BoundingBox3D
    assert BoundingBox3D.get_fields_and_field_types() == {
        "center": "geometry_msgs/Pose", "size": "geometry_msgs/Vector3"}


def test_ask_scene_service_fields_and_codes():
    from scene_llm_ros.srv import AskScene
    request = AskScene.Request.get_fields_and_field_types()
    assert request == {
        "question": "string", "task": "string", "prompt_points": "sequence<geometry_msgs/Point>",
        "max_new_tokens": "uint32", "return_masks": "boolean", "return_points": "boolean"}
    response = AskScene.Response.get_fields_and_field_types()
    for name, kind in {
            "success": "boolean", "error_code": "string", "message": "string",
            "answer": "string", "objects": "sequence<scene_llm_ros/GroundedObject>",
            "header": "std_msgs/Header", "scene_version": "uint64",
            "reference_camera_info": "sensor_msgs/CameraInfo",
            "reference_camera_pose": "geometry_msgs/Pose", "encode_ms": "float",
            "prefill_ms": "float", "decode_ms": "float", "total_ms": "float"}.items():
        assert response[name] == kind, name
    codes = {AskScene.Response.ERROR_NO_SCENE, AskScene.Response.ERROR_BAD_REQUEST,
             AskScene.Response.ERROR_BUSY, AskScene.Response.ERROR_TIMEOUT,
             AskScene.Response.ERROR_MODEL_ERROR}
    assert codes == {"NO_SCENE", "BAD_REQUEST", "BUSY", "TIMEOUT", "MODEL_ERROR"}
    assert {AskScene.Request.TASK_QA, AskScene.Request.TASK_GROUND,
            AskScene.Request.TASK_CAPTION, AskScene.Request.TASK_AUTO} == {
                "qa", "ground", "caption", ""}


def test_action_mirrors_service():
    from scene_llm_ros.action import AskScene as AskSceneAction
    from scene_llm_ros.srv import AskScene
    assert (AskSceneAction.Goal.get_fields_and_field_types()
            == AskScene.Request.get_fields_and_field_types())
    assert (AskSceneAction.Result.get_fields_and_field_types()
            == AskScene.Response.get_fields_and_field_types())
    assert AskSceneAction.Feedback.get_fields_and_field_types() == {
        "stage": "string", "partial_answer": "string", "tokens_generated": "uint32"}


def test_scene_status_and_persistence_services():
    from scene_llm_ros.msg import SceneStatus
    from scene_llm_ros.srv import LoadScene, SaveScene
    status = SceneStatus.get_fields_and_field_types()
    for name in ("frames_received", "frames_integrated", "frames_dropped", "keyframes",
                 "patch_tokens", "tsdf_voxels", "memory_bytes", "scene_version"):
        assert status[name] == "uint64", name
    assert status["drop_reasons"] == "sequence<string>"
    assert status["bounds_min"] == "geometry_msgs/Point"
    reasons = [v for k, v in vars(SceneStatus).items() if k.startswith("DROP_")]
    assert "queue_full" in reasons and "time_jump" in reasons
    for srv in (SaveScene, LoadScene):
        assert srv.Request.get_fields_and_field_types() == {"directory": "string"}
        assert srv.Response.get_fields_and_field_types() == {
            "success": "boolean", "message": "string", "scene_version": "uint64"}


def test_every_field_is_documented():
    """Each field line in the interface files is preceded by a comment (units, frames)."""
    field = re.compile(r"^[A-Za-z][\w/]*(\[\])?\s+[a-z_][a-z0-9_]*\s*$")
    for path in interface_files():
        if path.parent.name == "action":
            continue  # the action reuses the service's documented fields
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if field.match(line.strip()):
                above = [prev for prev in lines[:i] if prev.strip()]
                assert above and (above[-1].lstrip().startswith("#") or field.match(
                    above[-1].strip())), f"{path.name}: field '{line.strip()}' has no comment"



def test_scene_patches_point_classes_round_trip_and_malformed_ones_are_refused():
    from scene_llm_ros.nodes import conversions as conv

    classes = np.array([0, 1, -1, 2, 1], np.int16)
    snapshot = SceneSnapshot(
        positions=np.zeros((2, 3), np.float32), features=np.zeros((2, 4), np.float16),
        counts=np.ones(2, np.int64), total_tokens=2, scene_version=3, stamp_ns=0,
        scene_frame="map", keyframe=None, bounds_min=np.zeros(3, np.float32),
        bounds_max=np.ones(3, np.float32),
        points=np.random.default_rng(0).random((5, 3)).astype(np.float32),
        colors=np.zeros((5, 3), np.uint8), point_classes=classes,
        point_object_classes=classes, class_names=("floor", "chair", "table"))
    msg = conv.scene_patches_msg(snapshot, "builtin")
    received = conv.snapshot_from_patches(msg)
    np.testing.assert_array_equal(received.point_object_classes, classes)
    assert received.class_names == ("floor", "chair", "table")
    msg.point_object_classes = array.array("h", [0, 1, 2])  # too few
    with pytest.raises(ValueError, match="5 point classes"):
        conv.snapshot_from_patches(msg)
    msg.point_object_classes = array.array("h", [0, 1, 3, 0, 0])  # there is no class 3
    with pytest.raises(ValueError, match=r"in \[-1, 3\)"):
        conv.snapshot_from_patches(msg)
