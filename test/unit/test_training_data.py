"""Training data: config validation, annotation sources, instruction samples, scene cache."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_testutil import make_snapshot
from training_testutil import make_dataset, stage_config

from scene_llm_ros.data import annotations as ann
from scene_llm_ros.embedded import EMBEDDED_MODEL_DIR
from scene_llm_ros.evaluation import load_questions
from scene_llm_ros.fusion.config import FusionConfig
from scene_llm_ros.fusion.encoders import BuiltinPatchEncoder
from scene_llm_ros.model import (
    GROUND_TOKEN,
    SceneLlmConfig,
    build_prompt,
    build_tiny_scene_llm,
    prepare_scene_inputs,
)
from scene_llm_ros.model.processing_scene_llm import answer_text
from training import examples, scene_cache, templates
from training.answerer_training import load_answerer_config
from training.checkpoints import fusion_settings
from training.config import load_config
from training.dataset import SplitScenes, build_samples, corpus_texts
from training.encode import encode_sample
from training.encoder_alignment import load_alignment_config
from training.errors import TrainingConfigError
from training.listener_training import ListenerData, load_listener_config
from training.scene_cache import FrameSelection, SceneTokenCache, scene_cache_key


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("synth"))


def test_config_rejects_unknown_keys_and_encoder_training(tmp_path):
    path = tmp_path / "stage.yaml"
    path.write_text("data: {root: x, sorces: {scanqa: 1.0}}\n")
    with pytest.raises(TrainingConfigError, match=r"unknown keys \['sorces'\] in section 'data'"):
        load_config(path)
    path.write_text("stage: {trainable: [projector, patch_encoder]}\n")
    with pytest.raises(TrainingConfigError, match="patch_encoder' is not supported"):
        load_config(path)
    path.write_text("optim: {max_steps: 10, warmup_steps: 20}\n")
    with pytest.raises(TrainingConfigError, match="warmup_steps must be in"):
        load_config(path)
    path.write_text("model: {init: hf, llm_path: /models/x}\nstage: {trainable: [llm]}\n")
    with pytest.raises(TrainingConfigError, match="would not be saved"):
        load_config(path)
    path.write_text("optim: {micro_batch_size: 0}\n")
    with pytest.raises(TrainingConfigError, match="micro_batch_size must be >= 1"):
        load_config(path)
    path.write_text("optim: {head_lr_multiplier: 0}\n")
    with pytest.raises(TrainingConfigError, match="head_lr_multiplier must be > 0"):
        load_config(path)
    path.write_text("model: {init: checkpoint}\n")
    with pytest.raises(TrainingConfigError, match="needs model.checkpoint"):
        load_config(path)


def test_shipped_stage_configs_load():
    configs = sorted((Path(__file__).parents[2] / "training" / "configs").glob("*.yaml"))
    assert {p.stem for p in configs} >= {"encoder_alignment", "stage1_alignment",
                                         "stage2_grounding", "stage3_instruction", "embedded",
                                         "segment_listener", "qa_tuning", "referent_tuning",
                                         "segment_answerer"}
    encoder = load_alignment_config(next(p for p in configs if p.stem == "encoder_alignment"))
    assert encoder.data.eval_split == "test" and encoder.encoder.context_layers == 2
    listener = load_listener_config(next(p for p in configs if p.stem == "segment_listener"))
    assert listener.data.eval_split == "test" and listener.listener.max_segments == 48
    answerer = load_answerer_config(next(p for p in configs if p.stem == "segment_answerer"))
    assert answerer.data.sources == ["scanqa", "sqa3d"] and answerer.optim.focus_weight > 0
    stages = {p.stem: load_config(p) for p in configs
              if p.stem not in ("encoder_alignment", "segment_listener", "segment_answerer")}
    assert stages["stage1_alignment"].stage.trainable == ["feature_lift", "position_embedding",
                                                          "projector"]
    assert "grounding_head" in stages["stage2_grounding"].stage.trainable
    assert "lora" in stages["stage3_instruction"].stage.trainable
    assert stages["qa_tuning"].model.init == "checkpoint"
    assert stages["referent_tuning"].model.referent_tokens == 3


def test_the_embedded_models_fusion_settings_are_found_by_name():
    fusion, frames = fusion_settings("embedded")
    scene_tokens = SceneLlmConfig.from_json_file(EMBEDDED_MODEL_DIR / "scene_llm.json"
                                                 ).scene_tokens
    assert {name: getattr(fusion, name) for name in scene_tokens} == scene_tokens
    assert fusion.max_patch_tokens == 192 and frames["every_nth"] == 1


def test_templates_scene_caption_and_grounded_caption():
    assert templates.scene_caption(["chair", "desk", "chair", "office_chair"]) == \
        "the room has two chairs, a desk and an office chair."
    caption, grounded = templates.grounded_caption("a brown chair. it is near the desk.",
                                                   "chair")
    assert (caption, grounded) == (f"a brown chair {GROUND_TOKEN}. it is near the desk.", True)
    assert templates.grounded_caption("a seat by the wall.", "chair") == \
        ("a seat by the wall.", False)
    assert templates.grounding_answer([]) == templates.NO_OBJECT_ANSWER
    assert templates.grounding_answer(["trash_can", "desk"]) == \
        f"trash can {GROUND_TOKEN}, desk {GROUND_TOKEN}"


def test_offline_and_replay_evaluation_ask_the_same_questions(tmp_path):
    refer = ann.ScanReferRecord("scene0001_00", "4", "chair", "0", " the chair by the door. ")
    multi = ann.Multi3DReferRecord("scene0001_00", [4], "chair", 7, "the chair by the door.",
                                   "st_w_d", False, False, False, False)
    ann.write_scanrefer(tmp_path / "refer.json", [refer])
    ann.write_multi3drefer(tmp_path / "m3d.json", [multi])
    objects = {4: None}
    offline = [examples.from_scanrefer(refer, objects, None).question,
               examples.from_multi3drefer(multi, objects, None).question]
    replay = [load_questions(tmp_path / name).questions[0].question
              for name in ("refer.json", "m3d.json")]
    assert offline == replay == ["Find the chair by the door.", "the chair by the door"]


def test_samples_cover_every_source_with_consistent_grounding(dataset, tmp_path):
    config = stage_config(dataset, tmp_path, trainable=["projector"], per_source=6, sources={
        "scanqa": 1.0, "sqa3d": 1.0, "scanrefer": 2.0, "multi3drefer": 1.0, "scan2cap": 1.0,
        "scene_caption": 1.0})
    scenes = SplitScenes.discover(dataset, "train")
    samples, counts = build_samples(config.data, scenes, seed=0)
    assert counts["scanrefer"] == 12 and counts["scanqa"] == 6 and counts["scene_caption"] == 2
    assert len({s.sample_id for s in samples}) == len(samples)
    # The two repeats of a ScanRefer record draw their phrasings independently but reproducibly.
    again, _ = build_samples(config.data, scenes, seed=0)
    assert [s.question for s in again] == [s.question for s in samples]
    for sample in samples:
        assert sample.scene_id in scenes.scene_dirs
        assert sample.answer.count(GROUND_TOKEN) == len(sample.object_ids)
        objects = scenes.objects(sample.scene_id)
        assert all(i in objects for i in sample.object_ids)
        if sample.source == "scan2cap":
            assert sample.point_object_id in objects
        if sample.source == "sqa3d":
            assert sample.task == "situated" and sample.situation
    grounded = [s for s in samples if s.source == "scanrefer"]
    box = scenes.objects(grounded[0].scene_id)[grounded[0].object_ids[0]]
    assert np.all(box.size >= 0.01) and box.box.shape == (6,)


def test_encoded_prompt_is_the_inference_prompt(dataset, tmp_path):
    config = stage_config(dataset, tmp_path, trainable=["projector"], per_source=3,
                          sources={"scan2cap": 1.0, "scanrefer": 1.0, "sqa3d": 1.0})
    scenes = SplitScenes.discover(dataset, "train")
    samples, _ = build_samples(config.data, scenes, seed=0)
    model = build_tiny_scene_llm(corpus_texts(samples), vocab_size=400)
    scene = prepare_scene_inputs(make_snapshot(32), model.config.feature_dim)
    for sample in samples:
        encoded = encode_sample(model, sample, scene, scenes.objects(sample.scene_id))
        prompt = build_prompt(model.tokenizer, sample.question, num_scene_tokens=32,
                              task=sample.task, situation=sample.situation,
                              num_points=0 if sample.point_object_id is None else 1,
                              system_prompt=model.config.system_prompt)
        ids = encoded.example.input_ids.tolist()
        assert ids[:encoded.example.num_prompt_tokens] == prompt.input_ids
        target = ids[encoded.example.num_prompt_tokens:]
        assert answer_text(model.tokenizer, target) == \
            sample.answer.replace(f" {GROUND_TOKEN}", "")
        assert (encoded.targets is None) == (not sample.object_ids)
        if sample.point_object_id is not None:
            assert encoded.prompt_points.shape == (1, 3)


def test_scene_cache_hits_and_invalidates_on_encoder_and_fusion_changes(dataset, tmp_path,
                                                                        monkeypatch):
    scene_dir = dataset / "scans" / sorted(SplitScenes.discover(dataset, "train").scene_dirs)[0]
    frames = FrameSelection(every_nth=1, max_frames=6)
    encoder = BuiltinPatchEncoder(seed=0)
    fusion = FusionConfig(max_patch_tokens=48)
    cache = SceneTokenCache(tmp_path / "cache", encoder=encoder, fusion=fusion, frames=frames)
    fused = cache.get(scene_dir)
    assert (cache.misses, cache.hits) == (1, 0) and cache.path(scene_dir).is_file()
    again = cache.get(scene_dir)
    assert (cache.misses, cache.hits) == (1, 1)
    np.testing.assert_array_equal(again.positions, fused.positions)
    np.testing.assert_array_equal(again.features, fused.features)
    assert len(fused.positions) <= 48 and fused.features.shape[1] == encoder.feature_dim
    # The surface keeps its colours (segment features read them, as on the robot).
    np.testing.assert_array_equal(again.points, fused.points)
    np.testing.assert_array_equal(again.colors, fused.colors)
    assert fused.colors.shape == fused.points.shape and fused.colors.any()

    def key(**changes):
        values = {"encoder_identity": encoder.identity, "fusion": fusion, "frames": frames,
                  **changes}
        return scene_cache_key(scene_dir, **values)

    base = key()
    assert key(fusion=FusionConfig(max_patch_tokens=48, device="CUDA:0")) == base
    assert key(fusion=FusionConfig(max_patch_tokens=64)) != base
    assert key(fusion=FusionConfig(max_patch_tokens=48, patch_voxel_size_m=0.3)) != base
    assert key(encoder_identity=BuiltinPatchEncoder(seed=1).identity) != base
    assert key(frames=FrameSelection(every_nth=2, max_frames=6)) != base
    # Edited fusion code (e.g. new image preprocessing behind the same encoder identity).
    with monkeypatch.context() as patch:
        patch.setattr(scene_cache, "fusion_code_digest", lambda: "edited")
        assert key() != base
    assert key() == base
    # New encoder weights: a new key, so the scene is fused again rather than read stale.
    other = SceneTokenCache(tmp_path / "cache", encoder=BuiltinPatchEncoder(seed=1),
                            fusion=fusion, frames=frames)
    refused = other.get(scene_dir)
    assert other.misses == 1 and other.path(scene_dir) != cache.path(scene_dir)
    assert not np.array_equal(refused.features, fused.features)
    # New input frames change the key too.
    (scene_dir / "frames" / "color" / "extra.jpg").write_bytes(b"x")
    try:
        assert key() != base
    finally:
        (scene_dir / "frames" / "color" / "extra.jpg").unlink()


def test_scene_cache_fuses_missing_scenes_in_worker_processes(dataset, tmp_path):
    scene_dirs = sorted((dataset / "scans").iterdir())[:3]
    settings = {"encoder": BuiltinPatchEncoder(seed=0), "fusion": FusionConfig(max_patch_tokens=48),
                "frames": FrameSelection(every_nth=1, max_frames=6)}
    parallel = SceneTokenCache(tmp_path / "parallel", **settings)
    parallel.get(scene_dirs[0])
    assert parallel.fill(scene_dirs, workers=2) == 2
    assert all(parallel.path(d).is_file() for d in scene_dirs)
    assert parallel.fill(scene_dirs, workers=2) == 0
    one_process = SceneTokenCache(tmp_path / "one_process", **settings)
    assert one_process.fill(scene_dirs) == 3
    for scene_dir in scene_dirs:
        # The same tokens as fused in this process (the surface's point order may differ).
        tokens, reference = parallel.get(scene_dir), one_process.get(scene_dir)
        np.testing.assert_array_equal(tokens.positions, reference.positions)
        np.testing.assert_array_equal(tokens.features, reference.features)
    with pytest.raises(TrainingConfigError, match="fusion_workers"):
        ListenerData(fusion_workers=0)
