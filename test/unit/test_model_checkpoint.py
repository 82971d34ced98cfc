"""Checkpoints: atomic safetensors-only save, exact reload, mismatch errors, 4-bit, LoRA."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from model_testutil import CORPUS, force_token, make_snapshot, tiny_model
from safetensors.torch import load_file, save_file

from scene_llm_ros.errors import DataFormatError
from scene_llm_ros.model import (
    CheckpointMismatchError,
    SceneLlm,
    build_tiny_scene_llm,
    build_training_example,
    prepare_scene_inputs,
)
from scene_llm_ros.model.checkpoint import WEIGHTS_NAME

SAFE_SUFFIXES = {".json", ".safetensors", ".jinja", ".md", ".txt", ".model"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ckpt") / "scene_llm"
    tiny_model().save_pretrained(directory)
    return directory


def _grounded_answer(model, snapshot):
    hook = force_token(model, model.token_ids.ground)
    try:
        return model.answer(snapshot, "find the chair", task="ground", max_new_tokens=2)
    finally:
        hook.remove()


def _language_loss(model, snapshot) -> float:
    scene = prepare_scene_inputs(snapshot, model.config.feature_dim)
    example = build_training_example(model.tokenizer, "where is the chair?",
                                     "next to the table", num_scene_tokens=scene.num_tokens,
                                     system_prompt=model.config.system_prompt)
    with torch.no_grad():
        return model.compute_loss(scene, example).language.item()


def test_round_trip_gives_identical_outputs_and_only_safetensors(saved):
    original = tiny_model()
    loaded = SceneLlm.from_pretrained(saved)
    snapshot = make_snapshot(96, offset=(2.0, 3.0, 0.0))
    a = original.answer(snapshot, "where is the chair?", max_new_tokens=8)
    b = loaded.answer(snapshot, "where is the chair?", max_new_tokens=8)
    assert a.text == b.text and a.tokens_generated == b.tokens_generated
    ga, gb = _grounded_answer(original, snapshot), _grounded_answer(loaded, snapshot)
    assert len(ga.objects) == len(gb.objects) == 2
    for x, y in zip(ga.objects, gb.objects, strict=True):
        np.testing.assert_array_equal(x.center, y.center)
        np.testing.assert_array_equal(x.size, y.size)
        assert (x.score, x.label, x.token_index) == (y.score, y.label, y.token_index)
    assert _language_loss(original, snapshot) == _language_loss(loaded, snapshot)
    # The fusion node gets the very encoder the model was trained with.
    image = np.random.default_rng(0).integers(0, 255, (1, 96, 128, 3), dtype=np.uint8)
    np.testing.assert_array_equal(original.patch_encoder.encode(image),
                                  loaded.patch_encoder.encode(image))
    assert loaded.config.labels == original.config.labels
    files = [p for p in saved.rglob("*") if p.is_file()]
    assert {"scene_llm.json", WEIGHTS_NAME, "patch_encoder.safetensors",
            "model.safetensors", "tokenizer.json"} <= {p.name for p in files}
    assert not [p for p in files if p.suffix not in SAFE_SUFFIXES], files
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".")]  # no temp dirs


def test_saving_over_an_existing_checkpoint_replaces_it(tmp_path, saved):
    target = tmp_path / "model"
    shutil.copytree(saved, target)
    (target / "stale.txt").write_text("from an older save")
    tiny_model().save_pretrained(target)
    assert not (target / "stale.txt").exists()
    assert (target / WEIGHTS_NAME).is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


@pytest.mark.parametrize("tamper, expected", [
    ("shape", r"wrong shapes \['grounding_head.label.bias \(file \(7,\), model \(18,\)\)'\]"),
    ("missing", r"missing tensors \['scene_encoder.point_type_embedding'\]"),
    ("unexpected", r"unexpected tensors \['scene_encoder.extra'\]"),
])
def test_a_checkpoint_that_does_not_match_its_config_fails_naming_the_tensor(
        tmp_path, saved, tamper, expected):
    target = tmp_path / "model"
    shutil.copytree(saved, target)
    state = load_file(str(target / WEIGHTS_NAME))
    if tamper == "shape":
        state["grounding_head.label.bias"] = torch.zeros(7)
    elif tamper == "missing":
        del state["scene_encoder.point_type_embedding"]
    else:
        state["scene_encoder.extra"] = torch.zeros(2)
    save_file(state, str(target / WEIGHTS_NAME))
    with pytest.raises(CheckpointMismatchError, match=expected):
        SceneLlm.from_pretrained(target)


def test_a_directory_without_a_config_fails_clearly(tmp_path):
    with pytest.raises(DataFormatError, match="scene_llm.json"):
        SceneLlm.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="dtype must be one of"):
        SceneLlm.from_pretrained(tmp_path / "x", dtype="float64")
    with pytest.raises(ValueError, match="quantization must be one of"):
        SceneLlm.from_pretrained(tmp_path / "x", quantization="3bit")
    if torch.cuda.device_count() < 4:
        with pytest.raises(ValueError, match="'cuda:3' requested"):
            SceneLlm.from_pretrained(tmp_path / "x", device="cuda:3")


@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_quantized_llm_loads_and_generates_on_the_cpu(saved, quantization):
    import bitsandbytes as bnb

    model = SceneLlm.from_pretrained(saved, quantization=quantization)
    layer = model.llm.model.layers[0].self_attn.q_proj
    if quantization == "4bit":
        assert isinstance(layer, bnb.nn.Linear4bit)
        assert layer.weight.quant_state.quant_type == "nf4"
    else:
        assert isinstance(layer, bnb.nn.Linear8bitLt)
    snapshot = make_snapshot(64)
    answer = model.answer(snapshot, "where is the chair?", max_new_tokens=6)
    assert answer.tokens_generated >= 1 and not answer.cancelled
    grounded = _grounded_answer(model, snapshot)
    assert len(grounded.objects) == 2
    assert all(np.isfinite(o.center).all() for o in grounded.objects)


def test_lora_adapter_changes_outputs_and_reloads_identically(tmp_path, saved):
    model = SceneLlm.from_pretrained(saved)
    snapshot = make_snapshot(48)
    base_loss = _language_loss(model, snapshot)
    model.wrap_with_lora(rank=4, alpha=8, dropout=0.0)
    assert _language_loss(model, snapshot) == pytest.approx(base_loss)  # LoRA B starts at 0
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.llm.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    model.clear_prefix_cache()
    adapted_loss = _language_loss(model, snapshot)
    assert abs(adapted_loss - base_loss) > 1e-3
    model.save_lora_adapter(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    reloaded = SceneLlm.from_pretrained(saved, lora_path=tmp_path / "adapter")
    assert _language_loss(reloaded, snapshot) == pytest.approx(adapted_loss, abs=1e-6)
    # A full save of the adapted model keeps base and adapter apart and reloads them.
    model.save_pretrained(tmp_path / "full")
    assert (tmp_path / "full" / "lora_adapter" / "adapter_model.safetensors").is_file()
    again = SceneLlm.from_pretrained(tmp_path / "full")
    assert _language_loss(again, snapshot) == pytest.approx(adapted_loss, abs=1e-6)
    assert again.answer(snapshot, "find the chair", max_new_tokens=4).tokens_generated >= 1


def test_bfloat16_load_runs_the_whole_model_in_bfloat16(saved):
    model = SceneLlm.from_pretrained(saved, dtype="bfloat16")
    assert model.llm.get_input_embeddings().weight.dtype == torch.bfloat16
    assert model.scene_encoder.projector[0].weight.dtype == torch.bfloat16
    grounded = _grounded_answer(model, make_snapshot(64))
    assert len(grounded.objects) == 2
    assert all(np.isfinite(o.center).all() and o.center.dtype == np.float64
               for o in grounded.objects)


def test_an_llm_of_another_hidden_size_is_rejected(tmp_path, saved):
    target = tmp_path / "model"
    shutil.copytree(saved, target)
    config = json.loads((target / "scene_llm.json").read_text())
    config["llm_hidden_size"] = 256
    (target / "scene_llm.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError,
                       match="hidden size is 128 but the config says llm_hidden_size=256"):
        SceneLlm.from_pretrained(target)


def test_a_local_hf_vision_tower_is_referenced_not_copied(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from scene_llm_ros.fusion.encoders import HFVisionPatchEncoder

    tower = tmp_path / "clip"
    torch.manual_seed(0)
    CLIPVisionModel(CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                     num_attention_heads=2, image_size=32,
                                     patch_size=8)).save_pretrained(tower)
    spec = {"type": "hf", "path": str(tower), "layer": -2, "image_size": None}
    model = build_tiny_scene_llm(CORPUS, patch_encoder=spec)
    assert model.config.feature_dim == 64
    model.save_pretrained(tmp_path / "model")
    assert not (tmp_path / "model" / "patch_encoder").exists()
    loaded = SceneLlm.from_pretrained(tmp_path / "model")
    assert isinstance(loaded.patch_encoder, HFVisionPatchEncoder)
    image = np.random.default_rng(0).integers(0, 255, (1, 40, 40, 3), dtype=np.uint8)
    features = loaded.patch_encoder.encode(image)
    assert features.shape == (1, 4, 4, 64)
    np.testing.assert_array_equal(features, model.patch_encoder.encode(image))
    answer = loaded.answer(make_snapshot(32, feature_dim=64), "where?", max_new_tokens=2)
    assert answer.tokens_generated >= 1


def test_an_external_llm_directory_is_referenced_not_copied(tmp_path, saved):
    model = SceneLlm.from_pretrained(saved)
    model.config.llm_path = str(saved / "llm")
    model.save_pretrained(tmp_path / "model")
    assert not (tmp_path / "model" / "llm").exists()
    loaded = SceneLlm.from_pretrained(tmp_path / "model")
    snapshot = make_snapshot(40)
    assert _language_loss(loaded, snapshot) == _language_loss(model, snapshot)


def _llm_without_scene_tokens(directory):
    """An external LLM directory whose tokenizer has no <scene>/<ground>/<point>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from scene_llm_ros.model.tiny import TINY_CHAT_TEMPLATE, build_tiny_llm

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<pad>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    build_tiny_llm(tokenizer, hidden_size=64, num_layers=1, num_heads=2,
                   intermediate_size=128).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def test_rows_added_to_an_external_llm_are_saved_and_restored(tmp_path):
    from scene_llm_ros.fusion.encoders import encoder_from_spec
    from scene_llm_ros.model import SceneLlmConfig
    from scene_llm_ros.model.llm_loading import load_llm, load_tokenizer

    _llm_without_scene_tokens(tmp_path / "external")
    encoder = encoder_from_spec({"type": "builtin"}, seed=0)
    config = SceneLlmConfig(feature_dim=encoder.feature_dim, scene_dim=32, llm_hidden_size=64,
                            grounding_dim=32, llm_path=str(tmp_path / "external"))
    model = SceneLlm(config, load_llm(tmp_path / "external"),
                     load_tokenizer(tmp_path / "external"), encoder).eval()
    ground = model.token_ids.ground
    assert ground in model.added_row_ids
    with torch.no_grad():  # as if trained: rows no fresh resize can reproduce
        model.llm.get_input_embeddings().weight[ground] = 0.5
        model.llm.get_output_embeddings().weight[ground] = -0.25
    model.save_pretrained(tmp_path / "model")
    assert not (tmp_path / "model" / "llm").exists()
    assert "llm_added_rows.input_embeddings" in load_file(tmp_path / "model" / WEIGHTS_NAME)
    first = SceneLlm.from_pretrained(tmp_path / "model")
    second = SceneLlm.from_pretrained(tmp_path / "model")
    for loaded in (first, second):
        for get in ("get_input_embeddings", "get_output_embeddings"):
            expected = getattr(model.llm, get)().weight[model.added_row_ids]
            torch.testing.assert_close(getattr(loaded.llm, get)().weight[model.added_row_ids],
                                       expected, rtol=0, atol=0)
    snapshot = make_snapshot(24, feature_dim=encoder.feature_dim)
    assert _language_loss(first, snapshot) == _language_loss(model, snapshot)
    # Rows saved for other token ids than resizing gives are a mismatch, not a silent mix.
    weights = load_file(tmp_path / "model" / WEIGHTS_NAME)
    weights["llm_added_rows.ids"] = weights["llm_added_rows.ids"] + 1
    save_file(weights, tmp_path / "model" / WEIGHTS_NAME)
    with pytest.raises(CheckpointMismatchError, match="embedding rows for token ids"):
        SceneLlm.from_pretrained(tmp_path / "model")
