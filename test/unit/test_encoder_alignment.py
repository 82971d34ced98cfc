"""Stage 0: patch labels from lifted frames, word targets, and the aligned encoder's journey
into a model checkpoint."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from training_testutil import make_dataset

from scene_llm_ros.data.scannet import iter_scene_frames
from scene_llm_ros.fusion.encoders import BuiltinEncoderConfig, load_patch_encoder
from scene_llm_ros.model import SceneLlm
from scene_llm_ros.model.tiny import build_tiny_scene_llm
from training.dataset import SplitScenes
from training.encoder_alignment import (
    ENCODER_DIR,
    SUMMARY_JSON,
    AlignmentConfig,
    AlignmentData,
    AlignmentOptim,
    align_encoder,
    collect_frames,
    load_alignment_config,
)
from training.errors import TrainingConfigError
from training.objects import load_scene_objects
from training.patch_targets import (
    SceneObjectLookup,
    WordVocabulary,
    build_vocabulary,
    patch_targets,
    pixel_objects,
    words_of,
)

SMALL_ENCODER = BuiltinEncoderConfig(image_height=96, image_width=128, feature_dim=32,
                                     hidden_dim=24, context_layers=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("alignment") / "synth")


def test_lifted_pixels_land_in_the_box_of_the_object_they_are_labelled_with(dataset):
    scene_dir = next(iter(SplitScenes.discover(dataset, "train").scene_dirs.values()))
    lookup, boxes = SceneObjectLookup(scene_dir), load_scene_objects(scene_dir)
    inside = total = 0
    for frame in itertools.islice(iter_scene_frames(scene_dir, every_nth=4, align=True), 3):
        ids = pixel_objects(frame, lookup, step=2)
        assert ids.shape == (frame.depth.shape[0] // 2, frame.depth.shape[1] // 2)
        depth = frame.depth[::2, ::2]
        measured = np.isfinite(depth) & (depth > 0)
        assert (ids[measured] >= 0).mean() > 0.95  # synthetic scenes are annotated throughout
        assert (ids[~measured] == -1).all()
        rows, cols = np.mgrid[0:frame.depth.shape[0]:2, 0:frame.depth.shape[1]:2]
        k = frame.intrinsics
        for object_id, box in boxes.items():
            hit = ids == object_id
            z = depth[hit]
            camera = np.stack([(cols[hit] - k.cx) / k.fx * z, (rows[hit] - k.cy) / k.fy * z,
                               z], 1)
            world = camera @ frame.T_world_cam[:3, :3].T + frame.T_world_cam[:3, 3]
            inside += int((np.abs(world - box.center) <= box.size / 2 + 0.06).all(1).sum())
            total += int(hit.sum())
    assert total > 500 and inside / total > 0.97


def test_patch_targets_mix_object_profiles_by_pixel_share():
    profiles = {1: np.array([1.0, 0.0, 0.5], np.float32), 2: np.array([0.0, 1.0, 0.0],
                                                                       np.float32)}
    ids = np.full((4, 8), -1)
    ids[:, :4] = 1          # left cell: all object 1
    ids[:3, 4:6] = 2        # right cell: 6 pixels of 2, 2 of 1, 8 unknown
    ids[:2, 6] = 1
    targets, weights, dominant = patch_targets(ids, (1, 2), profiles, 3)
    np.testing.assert_allclose(targets[0, 0], [1.0, 0.0, 0.5])
    np.testing.assert_allclose(targets[0, 1], [0.25, 0.75, 0.125])
    np.testing.assert_allclose(weights[0], [1.0, 0.5])
    assert dominant.tolist() == [[1, 2]]
    _, weights, dominant = patch_targets(ids, (1, 2), profiles, 3, min_labelled=0.6)
    assert weights[0, 1] == 0 and dominant[0, 1] == -1


def test_vocabulary_keeps_class_words_and_frequent_description_words():
    vocabulary = build_vocabulary(["table lamp", "chair"],
                                  ["the brown chair is near the door"] * 3 + ["a rare word"],
                                  min_count=2)
    assert vocabulary.words == ["brown", "chair", "door", "lamp", "table"]
    assert "the" not in words_of("The chair") and "near" not in vocabulary.words
    profile = vocabulary.profile("chair", ["a brown chair", "the chair"])
    assert dict(zip(vocabulary.words, profile.tolist(), strict=True)) == {
        "brown": 0.5, "chair": 1.0, "door": 0.0, "lamp": 0.0, "table": 0.0}
    assert not WordVocabulary([]).profile("chair", []).size


@pytest.mark.parametrize("mixed_precision", ["none", "bf16"])
def test_aligned_encoder_learns_and_travels_inside_model_checkpoints(dataset, tmp_path,
                                                                     mixed_precision):
    # The same rooms once more as an "extra" dataset: every training frame counts twice.
    config = AlignmentConfig(
        data=AlignmentData(root=str(dataset), eval_split="test", every_nth_frame=2,
                           vocabulary_min_count=1, extra_roots=[str(dataset)]),
        encoder=SMALL_ENCODER, optim=AlignmentOptim(lr=3e-3, epochs=15, batch_size=8,
                                                    warmup_steps=0,
                                                    mixed_precision=mixed_precision),
        out_dir=str(tmp_path / "encoder"), log_every=1)
    summary = align_encoder(config)
    metrics = summary["metrics"]
    assert metrics["train"]["loss"] < 0.8 * metrics["train_before"]["loss"]
    assert metrics["train"]["patch_class_accuracy"] > metrics["train_before"][
        "patch_class_accuracy"]
    assert metrics["test"]["patches"] > 0
    single, _ = collect_frames(config.data, "train", SMALL_ENCODER)
    assert summary["frames"]["train"] == 2 * len(single)
    assert json.loads((tmp_path / "encoder" / SUMMARY_JSON).read_text())["metrics"] == metrics
    assert list((tmp_path / "encoder" / "tensorboard").glob("events.out.tfevents.*"))

    encoder_dir = tmp_path / "encoder" / ENCODER_DIR
    aligned = load_patch_encoder(str(encoder_dir))
    assert aligned.config == SMALL_ENCODER and "weights" in aligned.identity
    model = build_tiny_scene_llm(["the chair"], vocab_size=300,
                                 patch_encoder={"type": "builtin", "path": str(encoder_dir)})
    assert model.patch_encoder.identity == aligned.identity
    assert "path" not in model.config.patch_encoder  # the checkpoint carries the weights
    model.save_pretrained(tmp_path / "model")
    reloaded = SceneLlm.from_pretrained(tmp_path / "model")
    assert reloaded.patch_encoder.identity == aligned.identity
    image = np.random.default_rng(0).integers(0, 255, (1, 96, 128, 3), dtype=np.uint8)
    features = aligned.encode(image)
    np.testing.assert_array_equal(reloaded.patch_encoder.encode(image), features)
    # The patch classifier stays with the encoder, for fusion's semantic map.
    assert aligned.class_names == reloaded.patch_encoder.class_names
    assert {"floor", "wall", "chair"} <= set(aligned.class_names)
    np.testing.assert_array_equal(reloaded.patch_encoder.classify(features),
                                  aligned.classify(features))


def test_alignment_config_rejects_unknown_keys_and_bad_values(tmp_path):
    path = tmp_path / "align.yaml"
    path.write_text("encoder: {image_height: 100}\n")
    with pytest.raises(TrainingConfigError, match="multiple of 16"):
        load_alignment_config(path)
    path.write_text("optim: {epochs: 0}\n")
    with pytest.raises(TrainingConfigError, match="epochs"):
        load_alignment_config(path)
    path.write_text("optim: {mixed_precision: fp8}\n")
    with pytest.raises(TrainingConfigError, match="mixed_precision"):
        load_alignment_config(path)
    path.write_text("data: {rooot: x}\n")
    with pytest.raises(TrainingConfigError, match="rooot"):
        load_alignment_config(path)
    path.write_text("seed: 3\ndata: {extra_roots: [a]}\n")
    assert load_alignment_config(path).data.extra_roots == ["a"]
    config = load_alignment_config(path, root="d", out_dir="o", epochs=2, extra_roots=["b"])
    assert config.optim.epochs == 2 and config.data.extra_roots == ["b"]
