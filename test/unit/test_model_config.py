"""SceneLlmConfig: validated knobs and a JSON round trip."""
from __future__ import annotations

import json

import pytest

from scene_llm_ros.data.scannet.labels import BENCHMARK_CLASSES
from scene_llm_ros.errors import DataFormatError
from scene_llm_ros.model import SceneLlmConfig


def test_defaults_use_the_scannet_benchmark_labels_and_round_trip(tmp_path):
    config = SceneLlmConfig(feature_dim=64, labels=[*BENCHMARK_CLASSES, "lamp"])
    assert config.labels[:18] == list(BENCHMARK_CLASSES)
    config.to_json_file(tmp_path / "c.json")
    assert SceneLlmConfig.from_json_file(tmp_path / "c.json") == config
    assert json.loads((tmp_path / "c.json").read_text())["prompt_format_version"] == 1


@pytest.mark.parametrize("field, value, message", [
    ("feature_dim", 0, "feature_dim must be a positive int, got 0"),
    ("labels", ["chair", "chair"], "without duplicates"),
    ("prompt_format_version", 2, "prompt_format_version 2 is not supported"),
    ("patch_encoder", {"type": "vit"}, "'builtin' or 'hf', got 'vit'"),
    ("patch_encoder", {"type": "hf"}, "needs a 'path'"),
    ("min_wavelength_m", 30.0, "min_wavelength_m < max_wavelength_m"),
])
def test_bad_values_raise_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        SceneLlmConfig(**{field: value})


def test_unknown_fields_in_a_file_raise_a_data_format_error(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"feature_dim": 64, "colour": "red"}))
    with pytest.raises(DataFormatError, match="colour"):
        SceneLlmConfig.from_json_file(tmp_path / "c.json")
