"""`scene-llm evaluate` end to end: bags replayed over DDS into the nodes, AskScene, report.

Each run uses a synthetic room (160x120, 20 frames) written to a bag, the room's own
annotation files and a tiny model whose LLM always emits <ground>, so every answer carries
grounded objects, masks and boxes through the real service.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image as PilImage

from scene_llm_ros.cli import main
from scene_llm_ros.data.rosbag import iter_messages, write_bag
from scene_llm_ros.data.scannet import iter_scene_frames
from scene_llm_ros.data.synth import SynthConfig, write_dataset
from scene_llm_ros.evaluation import REPORT_KEYS, ReplayError
from scene_llm_ros.model import GROUND_TOKEN, build_tiny_scene_llm
from scene_llm_ros.nodes.replay import bag_image_msg, file_parameters

pytestmark = pytest.mark.dds
FRAMES = 20
SCENE = "scene9000_00"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, SynthConfig(width=160, height=120, num_frames=FRAMES, noise=False,
                                    write_sens=False, split_ratios=(1.0, 0.0, 0.0)),
                  scenes=1, seed=3)
    return root


@pytest.fixture(scope="module")
def frames(dataset):
    return list(iter_scene_frames(dataset / "scans" / SCENE))


@pytest.fixture(scope="module")
def checkpoint(dataset, tmp_path_factory):
    """A tiny model that always generates <ground>, saved as a checkpoint.

    One residual dimension is held at a constant by the embeddings (attention and MLP never
    write to it) and is the only one the final norm keeps, so the logits are zero except for
    <ground>'s, which reads that dimension: greedy decoding picks <ground> every time.
    """
    annotations = dataset / "annotations"
    corpus = [r["question"] for r in json.loads((annotations / "ScanQA_v1.0_train.json")
                                                .read_text())]
    corpus += [r["description"] for r in json.loads(
        (annotations / "ScanRefer_filtered_train.json").read_text())]
    model = build_tiny_scene_llm(corpus * 3, vocab_size=400)
    llm, dim = model.llm, 0
    with torch.no_grad():
        llm.model.embed_tokens.weight[:, dim] = 50.0
        for layer in llm.model.layers:
            layer.self_attn.o_proj.weight[dim, :] = 0.0
            layer.mlp.down_proj.weight[dim, :] = 0.0
        llm.model.norm.weight.zero_()
        llm.model.norm.weight[dim] = 1.0
        llm.lm_head.weight.zero_()
        llm.lm_head.weight[model.tokenizer.convert_tokens_to_ids(GROUND_TOKEN), dim] = 1.0
    path = tmp_path_factory.mktemp("model") / "tiny_grounding"
    model.save_pretrained(path)
    return path


def evaluate(bag, questions, out, checkpoint, *extra) -> int:
    files = [str(q) for q in questions] if isinstance(questions, list) else [str(questions)]
    return main(["evaluate", "--bag", str(bag), "--questions", *files, "--out",
                 str(out), "--checkpoint", str(checkpoint), "--max-new-tokens", "2",
                 "--no-meteor", "--question-timeout", "30", *extra])


def load_report(out):
    report = json.loads((out / "report.json").read_text())
    assert set(REPORT_KEYS) <= set(report)
    assert (out / "report.md").read_text().startswith("# Replay evaluation")
    with PilImage.open(out / "topdown.png") as picture:
        assert picture.format == "PNG"
    return report


def check_all_integrated(report):
    ingest = report["ingest"]
    assert ingest["frames_in_bag"] == FRAMES
    assert ingest["published"] == ingest["received"] == ingest["integrated"] == FRAMES
    assert ingest["dropped"] == ingest["pending"] == ingest["lost_in_transport"] == 0
    assert ingest["fusion_finished"]
    assert set(ingest["dropped_by_reason"]) >= {"queue_full", "no_pose", "unsynchronized"}
    assert ingest["keyframes"] >= 1 and ingest["patch_tokens"] > 0


def check_pictures(report, out):
    for question in report["questions"]:
        if question["objects"]:
            with PilImage.open(out / question["picture"]) as picture:
                assert picture.format == "PNG"


def test_mcap_bgr8_32fc1_pose_topic_scanqa(dataset, frames, checkpoint, tmp_path):
    bag = tmp_path / "bag"
    write_bag(frames, bag, storage="mcap", color_encoding="bgr8", depth_encoding="32FC1",
              tf=False)
    out = tmp_path / "eval"
    questions = dataset / "annotations" / "ScanQA_v1.0_train.json"
    assert evaluate(bag, questions, out, checkpoint, "--as-fast-as-possible",
                    "--limit", "4") == 0
    report = load_report(out)
    check_all_integrated(report)
    assert report["run"]["pose_source"] == "topic" and report["run"]["storage"] == "mcap"
    assert report["run"]["format"] == "scanqa" and report["ingest"]["mode"] == \
        "as_fast_as_possible"
    assert {"scanqa/em", "scanqa/em_r", "scanqa/bleu-4", "scanqa/rouge-l",
            "scanqa/cider"} <= set(report["metrics"])
    assert "scanqa/meteor" not in report["metrics"]  # --no-meteor
    assert len(report["questions"]) == 4
    for question in report["questions"]:
        assert question["success"], question["message"]
        assert question["task"] == "scanqa" and question["references"]
        assert question["latency_ms"] > 0 and "em" in question["metrics"]
        # The model always grounds: two <ground> tokens, two boxes, nothing left as text.
        assert len(question["objects"]) == 2 and question["answer"] == ""
        assert all(min(o["size"]) > 0 for o in question["objects"])
    check_pictures(report, out)


def test_sqlite3_tf_only_scanrefer_and_scanqa_with_gt_scene(dataset, frames, checkpoint,
                                                            tmp_path):
    bag = tmp_path / "bag"
    write_bag(frames, bag, storage="sqlite3", pose_topic=False)
    out = tmp_path / "eval"
    files = [dataset / "annotations" / "ScanRefer_filtered_train.json",
             dataset / "annotations" / "ScanQA_v1.0_train.json"]
    assert evaluate(bag, files, out, checkpoint, "--as-fast-as-possible", "--limit", "3",
                    "--gt-scene", str(dataset / "scans" / SCENE)) == 0
    report = load_report(out)
    check_all_integrated(report)
    assert report["run"]["pose_source"] == "tf" and report["run"]["storage"] == "sqlite3"
    assert report["run"]["formats"] == ["scanrefer", "scanqa"]
    assert report["run"]["questions_files"] == [str(f) for f in files]
    assert {"scanrefer/acc@0.25", "scanrefer/acc@0.5", "scanqa/em"} <= set(report["metrics"])
    assert [q["task"] for q in report["questions"]] == ["scanrefer"] * 3 + ["scanqa"] * 3
    objects = json.loads((dataset / "scans" / SCENE / f"{SCENE}_objects.json").read_text())
    boxes = {o["object_id"]: o for o in objects["objects"]}
    for question in report["questions"][:3]:
        target = boxes[question["gt_object_ids"][0]]
        # GT boxes come from the mesh (no axis alignment) in the bag's frame.
        np.testing.assert_allclose(question["gt_boxes"][0][3:],
                                   np.subtract(target["box_max"], target["box_min"]), atol=0.02)
        assert 0.0 <= question["metrics"]["iou"] <= 1.0
        assert question["picture"] == f"grounding/{question['id'].replace('|', '_')}.png"
    check_pictures(report, out)
    # This model grounds every answer, so each question has its picture.
    assert len(list((out / "grounding").glob("*.png"))) == 6


def test_recorded_rate_and_jsonl(dataset, frames, checkpoint, tmp_path):
    bag = tmp_path / "bag"
    write_bag(frames, bag)
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in [
        {"id": "bed", "question": "the bed", "task": "ground", "box": [1, 2, 0.3, 2, 1.6, 0.6]},
        {"id": "two", "question": "the two lamps", "task": "ground",
         "box": [[0, 0, 0, 1, 1, 1], [2, 2, 0, 1, 1, 1]]},
        {"id": "free", "question": "what is in the room?"}]))
    out = tmp_path / "eval"
    assert evaluate(bag, questions, out, checkpoint, "--rate", "4") == 0
    report = load_report(out)
    ingest = report["ingest"]
    assert ingest["mode"] == "rate x4" and ingest["published"] == FRAMES
    # Real-time replay may drop frames (counted by reason) and, on a loaded machine, lose an
    # image in transport (its partner then stays pending): every frame is accounted for.
    assert ingest["integrated"] + ingest["dropped"] + ingest["pending"] == FRAMES
    assert ingest["integrated"] > 0 and report["timing"]["fusion_wait_s"] < 30
    recorded_s = (frames[-1].stamp_ns - frames[0].stamp_ns) * 1e-9
    assert report["timing"]["replay_s"] >= 0.9 * recorded_s / 4
    assert {"scanrefer/acc@0.25", "multi3drefer/f1@0.25"} <= set(report["metrics"])
    by_id = {q["id"]: q for q in report["questions"]}
    assert by_id["free"]["task"] == "auto" and by_id["free"]["metrics"] == {}


def test_bags_without_rgbd_fail_clearly(shared_data, tmp_path, caplog):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "a", "question": "what is here?", "task": "qa"}\n')
    args = ["--questions", str(questions), "--out", str(tmp_path / "out"),
            "--checkpoint", str(tmp_path)]
    done = subprocess.run([shutil.which("scene-llm"), "evaluate", "--bag",
                           str(shared_data / "rosbag2" / "talker_mcap"), *args],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode == 1
    assert "no RGB-D topics" in done.stderr and "/topic [std_msgs/msg/String]" in done.stderr
    assert main(["evaluate", "--bag", str(shared_data / "rosbag2" / "talker_sqlite3"),
                 *args]) == 1
    assert "no RGB-D topics" in caplog.text
    assert not (tmp_path / "out").exists()


def test_question_files_about_different_scenes_are_refused(tmp_path, caplog):
    files = []
    for scene in ("scene0001_00", "scene0002_00"):
        path = tmp_path / f"ScanQA_{scene}.json"
        path.write_text(json.dumps([{"scene_id": scene, "question_id": f"{scene}-0",
                                     "question": "what is here?", "answers": ["a chair"],
                                     "object_ids": [1], "object_names": ["chair"]}]))
        files.append(path)
    assert main(["evaluate", "--bag", str(tmp_path / "no_bag"), "--questions", *map(str, files),
                 "--out", str(tmp_path / "out"), "--checkpoint", str(tmp_path)]) == 1
    assert "different scenes ['scene0001_00', 'scene0002_00']" in caplog.text
    assert not (tmp_path / "out").exists()


def test_replayed_images_keep_the_bag_bytes(frames, tmp_path):
    bag = tmp_path / "bag"
    write_bag(frames[:1], bag, color_encoding="bgr8", depth_encoding="32FC1")
    for topic, _, _, msg in iter_messages(bag, ["/camera/color/image_raw",
                                                "/camera/depth/image_rect_raw"],
                                          deserialize=True):
        image = bag_image_msg(msg)
        assert bytes(image.data) == bytes(msg.data), topic
        assert (image.encoding, image.step, image.width, image.height) == (
            msg.encoding, msg.step, msg.width, msg.height)
        assert (image.header.stamp.sec, image.header.stamp.nanosec) == (
            msg.header.stamp.sec, msg.header.stamp.nanosec)


def test_params_files_written_for_the_plain_node_names_apply(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    voxel_size_m: 0.05\n"
        "fusion_node:\n  ros__parameters:\n    queue_size: 7\n    nested: {a: 1}\n"
        "inference_node:\n  ros__parameters:\n    max_new_tokens: 3\n")
    assert file_parameters(params, "fusion_node", "/eval") == {
        "voxel_size_m": 0.05, "queue_size": 7, "nested.a": 1}
    assert file_parameters(params, "inference_node", "/eval") == {
        "voxel_size_m": 0.05, "max_new_tokens": 3}
    params.write_text("- not a mapping\n")
    with pytest.raises(ReplayError, match="ros__parameters"):
        file_parameters(params, "fusion_node", "/eval")
