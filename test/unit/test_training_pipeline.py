"""Stages 1-3 end to end on a tiny synthetic dataset, resume, and offline evaluation."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch import nn
from training_testutil import TINY_MODEL, make_dataset, stage_config

from scene_llm_ros.cli import main as cli_main
from scene_llm_ros.fusion.encoders import BuiltinEncoderConfig, BuiltinPatchEncoder
from scene_llm_ros.model import SceneLlm
from scene_llm_ros.model.segment_listener import ListenerShape
from training.answerer_training import load_answerer_config, train_answerer
from training.checkpoints import read_training_json
from training.dataset import SplitScenes
from training.errors import TrainingConfigError
from training.listener_training import ReferringData, load_listener_config
from training.scene_cache import FrameSelection, SceneTokenCache
from training.scene_segments import checkpoint_scene_cache
from training.trainer import Trainer, train

ALIGN = ["feature_lift", "position_embedding", "projector"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    return make_dataset(root / "synth"), root / "cache", root


def _decreased(losses: list[float]) -> bool:
    return all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


def _tensors(directory) -> dict[str, torch.Tensor]:
    tensors = load_file(str(directory / "scene_llm.safetensors"))
    adapter = directory / "lora_adapter" / "adapter_model.safetensors"
    if adapter.is_file():
        tensors.update({f"lora/{k}": v for k, v in load_file(str(adapter)).items()})
    return tensors


def test_three_stages_chain_reload_answer_and_evaluate(workspace):
    data, cache, root = workspace
    # One repeated batch per stage, so the loss must go down within a few steps.
    stage1 = train(stage_config(data, root / "s1", sources={"scan2cap": 1.0}, per_source=1,
                                trainable=ALIGN, grounding_weight=0.0, max_steps=5, lr=1e-2,
                                cache_dir=cache))
    assert _decreased(stage1.losses), stage1.losses
    stage2 = train(stage_config(
        data, root / "s2", sources={"scanrefer": 1.0}, per_source=1,
        trainable=[*ALIGN, "grounding_head"], max_steps=5, lr=1e-2, cache_dir=cache,
        model={"init": "checkpoint", "checkpoint": str(stage1.final_dir)}))
    assert _decreased(stage2.losses), stage2.losses
    stage3 = train(stage_config(
        data, root / "s3", sources={"scanqa": 1.0, "scanrefer": 1.0}, per_source=1,
        trainable=["lora", *ALIGN, "grounding_head"], max_steps=5, lr=2e-3, cache_dir=cache,
        model={"init": "checkpoint", "checkpoint": str(stage2.final_dir)}))
    # LoRA starts as the identity and Adam's first steps are sign-sized, so a few steps on
    # a random LLM need not lower the loss: require finite losses and adapters that moved.
    assert all(math.isfinite(v) for v in stage3.losses), stage3.losses

    final = stage3.final_dir
    assert (final / "lora_adapter" / "adapter_config.json").is_file()
    assert read_training_json(final)["stage"] == "test"
    before, after = _tensors(stage2.final_dir), _tensors(final)
    assert not torch.equal(before["scene_encoder.projector.0.weight"],
                           after["scene_encoder.projector.0.weight"])
    lora_b = [v for k, v in after.items() if k.startswith("lora/") and "lora_B" in k]
    assert lora_b and all(v.abs().max() > 0 for v in lora_b)  # B starts at zero
    assert list((root / "s3" / "tensorboard").glob("events.out.tfevents.*"))

    # The checkpoint loads the way the inference node loads it, and answers with boxes.
    model = SceneLlm.from_pretrained(final)
    scenes = SplitScenes.discover(data, "test")
    scene_dir = next(iter(scenes.scene_dirs.values()))
    snapshot = SceneTokenCache(cache, encoder=model.patch_encoder,
                               fusion=stage_config(data, root, sources={"scanqa": 1.0},
                                                   trainable=ALIGN).fusion,
                               frames=FrameSelection()).get(scene_dir)
    answer = model.answer(snapshot, "the chair near the door", task="ground", max_new_tokens=6)
    assert isinstance(answer.text, str) and answer.tokens_generated >= 1

    out = root / "eval"
    status = cli_main(["eval-offline", "--checkpoint", str(final), "--data", str(data),
                       "--split", "test", "--out", str(out), "--limit", "1", "--no-meteor",
                       "--max-new-tokens", "6", "--cache-dir", str(cache),
                       "--tasks", "scanqa,scanrefer,multi3drefer,scan2cap"])
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert report["counts"] == {"scanqa": 1, "scanrefer": 1, "multi3drefer": 1, "scan2cap": 1}
    assert 0.0 <= report["metrics"]["scanrefer/acc@0.25"] <= 1.0
    assert "scanqa/em" in report["metrics"] and (out / "report.md").is_file()
    assert (out / "training_curves.png").stat().st_size > 1000
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 4


def test_the_listener_and_answerer_train_on_a_checkpoint_and_ground_answers(workspace):
    data, cache, root = workspace
    # A patch encoder with a (random) class head, so fusion builds a semantic map.
    encoder = BuiltinPatchEncoder(BuiltinEncoderConfig(image_height=96, image_width=128))
    torch.manual_seed(0)
    classes = ["bed", "chair", "door", "floor", "table", "wall", "window"]
    encoder.set_classes(classes, nn.Linear(encoder.feature_dim, len(classes)))
    encoder.save_pretrained(root / "classifying_encoder")
    # The LLM also reads the semantic map's segments as object tokens.
    llm = train(stage_config(
        data, root / "llm", sources={"scanrefer": 1.0}, per_source=1,
        trainable=[*ALIGN, "object_tokens", "grounding_head"], max_steps=1, cache_dir=cache,
        model={**TINY_MODEL, "tiny": {**TINY_MODEL["tiny"], "object_tokens": 8,
                                      "patch_encoder": {
                                          "type": "builtin",
                                          "path": str(root / "classifying_encoder")}}}))
    config = root / "listener.yaml"
    config.write_text(yaml.safe_dump({
        "seed": 0, "out_dir": str(root / "unused"), "log_every": 1,
        "data": {"root": str(data), "cache_dir": str(cache), "min_target_iou": 0.1},
        "listener": {"hidden_size": 32, "text_layers": 1, "relation_layers": 1,
                     "max_segments": 16},
        "optim": {"lr": 3e-3, "batch_size": 4, "warmup_steps": 0}}))
    out = root / "listener"
    assert cli_main(["train-listener", "--config", str(config), "--checkpoint",
                     str(llm.final_dir), "--out", str(out), "--epochs", "40"]) == 0
    summary = json.loads((out / "listener.json").read_text())
    train_metrics = summary["metrics"]["train"]
    assert train_metrics["items"] >= 8 and "test" in summary["metrics"]
    # Forty passes over a handful of descriptions: it learns them by heart.
    assert train_metrics["acc@0.25"] >= 0.8 * train_metrics["best@0.25"], train_metrics
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    model = SceneLlm.from_pretrained(out / "final")
    assert model.config.object_tokens == 8 and model.config.object_classes == classes
    assert model.segment_listener is not None
    assert model.segment_listener.config.class_names == classes
    # The stage also fits the box completer, on the training rooms' objects.
    assert model.box_completer is not None and model.box_completer.config.class_names == classes
    boxes = summary["box_completion"]["train"]
    assert boxes["segment"]["objects"] == boxes["completed"]["objects"] > 0
    assert read_training_json(out / "final") == read_training_json(llm.final_dir)
    status = cli_main(["eval-offline", "--checkpoint", str(out / "final"), "--data", str(data),
                       "--split", "test", "--out", str(root / "listener_eval"), "--limit", "2",
                       "--no-meteor", "--max-new-tokens", "6", "--cache-dir", str(cache),
                       "--tasks", "scanrefer"])
    assert status == 0
    with pytest.raises(TrainingConfigError, match="unknown keys"):
        load_listener_config(_written(root / "bad.yaml", {"listener": {"width": 3}}))

    # Another dataset's rooms (the same scene ids, other rooms) add their descriptions.
    other = make_dataset(root / "other", seed=6)
    extra_out = root / "listener_extra"
    assert cli_main(["train-listener", "--config", str(config), "--checkpoint",
                     str(llm.final_dir), "--out", str(extra_out), "--epochs", "1",
                     "--extra-data", str(other)]) == 0
    settings = load_listener_config(config).data
    listener_model = SceneLlm.from_pretrained(llm.final_dir)

    def referring(dataset, cache_dir):
        return ReferringData(listener_model, SplitScenes.discover(dataset, "train"),
                             checkpoint_scene_cache(listener_model, llm.final_dir,
                                                    str(dataset), cache_dir),
                             replace(settings, root=str(dataset), cache_dir=cache_dir),
                             "train", ListenerShape(max_segments=16))

    joined, extra = referring(data, str(cache)), referring(other, None)
    own = len(joined.items)
    joined.join(extra)
    assert extra.items and len(joined.items) == own + len(extra.items) == json.loads(
        (extra_out / "listener.json").read_text())["metrics"]["train"]["items"]
    # Each item is collated with its own room's segments, though the ids are shared.
    assert any(len(joined.segments.features[s].segments) !=
               len(extra.segments.features[s].segments)
               for s in set(joined.segments.features) & set(extra.segments.features))
    for item in joined.items:
        assert joined.collate([item], [0])[3].shape[1] == len(item.ious)
    # A dataset whose map names other classes cannot join: its one-hot rows would lie.
    extra.class_names = extra.class_names[::-1]
    with pytest.raises(TrainingConfigError, match="other classes"):
        joined.join(extra)

    # A later stage gives the model referent tokens, which the listener fills.
    referents = train(stage_config(
        data, root / "referents", sources={"scanqa": 1.0}, per_source=2,
        trainable=["referent_tokens", "llm"], max_steps=2, lr=1e-3, cache_dir=cache,
        model={"init": "checkpoint", "checkpoint": str(out / "final"), "referent_tokens": 3}))
    assert all(math.isfinite(v) for v in referents.losses), referents.losses
    tuned = SceneLlm.from_pretrained(referents.final_dir)
    assert tuned.config.referent_tokens == 3 and tuned.segment_listener is not None
    assert tuned.segment_listener.config.vocab_size == len(tuned.tokenizer)
    before = _tensors(out / "final")["scene_encoder.object_lift.weight"]
    assert not torch.equal(before, _tensors(referents.final_dir)[
        "scene_encoder.object_lift.weight"])
    assert cli_main(["eval-offline", "--checkpoint", str(referents.final_dir), "--data",
                     str(data), "--split", "test", "--out", str(root / "referent_eval"),
                     "--limit", "2", "--no-meteor", "--max-new-tokens", "6", "--cache-dir",
                     str(cache), "--tasks", "scanqa"]) == 0
    with pytest.raises(TrainingConfigError, match="segment listener"):
        train(stage_config(data, root / "no_listener", sources={"scanqa": 1.0}, per_source=1,
                           trainable=["referent_tokens"], max_steps=1, cache_dir=cache,
                           model={"init": "checkpoint", "checkpoint": str(llm.final_dir),
                                  "referent_tokens": 3}))

    # The last stage: the answerer starts from the listener and answers ScanQA and SQA3D.
    answerer_config = _written(root / "answerer.yaml", {
        "seed": 0, "out_dir": str(root / "unused"), "log_every": 1,
        "data": {"root": str(data), "cache_dir": str(cache), "min_answer_count": 1},
        "optim": {"lr": 3e-3, "batch_size": 4, "warmup_steps": 0}})
    answered = root / "answerer"
    assert cli_main(["train-answerer", "--config", str(answerer_config), "--checkpoint",
                     str(out / "final"), "--out", str(answered), "--epochs", "40"]) == 0
    summary = json.loads((answered / "answerer.json").read_text())
    train_metrics = summary["metrics"]["train"]
    assert train_metrics["items"] >= 8 and "test" in summary["metrics"]
    # Forty passes over a handful of questions: it learns their answers by heart.
    assert train_metrics["scanqa_em"] >= 0.8 and train_metrics["sqa3d_em"] >= 0.8, summary
    model = SceneLlm.from_pretrained(answered / "final")
    assert model.segment_answerer is not None and model.segment_listener is not None
    assert len(model.segment_answerer.config.answers) == summary["answers"]
    assert cli_main(["eval-offline", "--checkpoint", str(answered / "final"), "--data",
                     str(data), "--split", "test", "--out", str(root / "answerer_eval"),
                     "--limit", "2", "--no-meteor", "--max-new-tokens", "6", "--cache-dir",
                     str(cache), "--tasks", "scanqa,sqa3d"]) == 0
    predictions = [json.loads(line) for line in
                   (root / "answerer_eval" / "predictions.jsonl").read_text().splitlines()]
    assert {p["task"] for p in predictions} == {"scanqa", "sqa3d"}
    assert all(p["answer"] in model.segment_answerer.config.answers for p in predictions)
    with pytest.raises(TrainingConfigError, match="segment listener"):
        train_answerer(load_answerer_config(answerer_config), llm.final_dir)


def _written(path, values: dict):
    path.write_text(yaml.safe_dump(values))
    return path


def test_resume_matches_an_uninterrupted_run(workspace):
    data, cache, root = workspace

    def config(out):
        # LoRA dropout draws random numbers, so the RNG state must resume too; 6 samples in
        # batches of 2 cross an epoch boundary (a new shuffle) after step 3.
        return stage_config(data, out, sources={"scanqa": 1.0, "scanrefer": 1.0},
                            per_source=3, trainable=["lora", "projector", "grounding_head"],
                            max_steps=5, checkpoint_every=2, cache_dir=cache)

    whole = train(config(root / "whole"))
    first = train(config(root / "split"), stop_after=3)
    assert first.final_dir.name == "step_000003" and not (root / "split" / "final").exists()
    rest = train(config(root / "split"), resume=True)
    assert (rest.start_step, rest.end_step) == (3, 5)
    assert rest.losses == pytest.approx(whole.losses[3:], rel=1e-6, abs=1e-7)
    expected, resumed = _tensors(whole.final_dir), _tensors(rest.final_dir)
    assert expected.keys() == resumed.keys()
    for name in expected:
        torch.testing.assert_close(resumed[name], expected[name], rtol=1e-6, atol=1e-7,
                                   msg=name)


def test_hf_init_wraps_a_local_llm_and_refers_to_it(workspace, tmp_path):
    data, cache, root = workspace
    from scene_llm_ros.model import build_tiny_scene_llm

    # A stand-in for a pretrained Hugging Face LLM directory: a tiny model's llm/ folder.
    build_tiny_scene_llm(["where is the chair?", "the chair is by the door."],
                         vocab_size=300).save_pretrained(tmp_path / "donor")
    llm_dir = tmp_path / "donor" / "llm"
    result = train(stage_config(
        data, tmp_path / "run", sources={"scanrefer": 1.0}, per_source=2, max_steps=2,
        trainable=["lora", "projector", "grounding_head"], cache_dir=cache,
        model={"init": "hf", "llm_path": str(llm_dir),
               "scene_config": {"scene_dim": 64, "grounding_dim": 64}}))
    assert all(math.isfinite(v) for v in result.losses)
    saved = json.loads((result.final_dir / "scene_llm.json").read_text())
    assert saved["llm_path"] == str(llm_dir) and saved["scene_dim"] == 64
    assert not (result.final_dir / "llm").exists()  # referred to, not copied
    model = SceneLlm.from_pretrained(result.final_dir)
    assert (result.final_dir / "lora_adapter").is_dir() and model.config.grounding_dim == 64


def test_micro_batches_match_one_padded_batch_and_the_head_takes_its_own_lr(workspace):
    data, cache, root = workspace

    def config(out, micro_batch_size):
        # Prompts of different lengths (QA and grounding) force padding in the one batch.
        result = stage_config(data, out, sources={"scanqa": 1.0, "scanrefer": 1.0},
                              per_source=3, trainable=["projector", "grounding_head"],
                              max_steps=2, examples=3, cache_dir=cache)
        result.optim.micro_batch_size = micro_batch_size
        result.optim.head_lr_multiplier = 4.0
        return result

    together = train(config(root / "batch_all", None))
    apart = train(config(root / "batch_one", 1))
    # The second step's loss is computed with the weights the first step's gradients made.
    # (Weights are not compared: Adam turns float-rounding differences of near-zero
    # gradients into steps of up to lr.)
    assert apart.losses == pytest.approx(together.losses, rel=1e-4, abs=1e-6)
    trainer = Trainer(config(root / "batch_lr", None))
    scales = {id(p): g["lr_scale"] for g in trainer.optimizer.param_groups for p in g["params"]}
    for name, parameter in trainer.trainable:
        assert scales[id(parameter)] == (4.0 if name.startswith("grounding_head.") else 1.0)
