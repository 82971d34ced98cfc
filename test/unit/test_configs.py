"""Every parameters file in config/ names only declared parameters, with their types."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scene_llm_ros.nodes.fusion_node import PARAMS as FUSION_PARAMS
from scene_llm_ros.nodes.inference_node import PARAMS as INFERENCE_PARAMS

CONFIG = Path(__file__).resolve().parents[2] / "config"
DECLARED = {"fusion_node": {p.name: p for p in FUSION_PARAMS},
            "inference_node": {p.name: p for p in INFERENCE_PARAMS}}


@pytest.mark.parametrize("path", sorted(CONFIG.glob("*.yaml")), ids=lambda p: p.name)
def test_parameter_files_match_the_declarations(path):
    sections = yaml.safe_load(path.read_text())
    assert sections and set(sections) <= set(DECLARED), f"{path.name}: unknown node sections"
    for node, section in sections.items():
        values = section["ros__parameters"]
        unknown = set(values) - set(DECLARED[node])
        assert not unknown, f"{path.name}: {node} declares no {sorted(unknown)}"
        for name, value in values.items():
            default = DECLARED[node][name].default
            # rclpy refuses an int for a double parameter and vice versa.
            assert type(value) is type(default), f"{path.name}: {node}.{name}={value!r}"
            param = DECLARED[node][name]
            if param.low is not None and not isinstance(value, (bool, str)):
                assert param.low <= value <= param.high, f"{path.name}: {node}.{name} range"


def test_the_default_file_lists_every_parameter_at_its_default():
    sections = yaml.safe_load((CONFIG / "scene_llm.yaml").read_text())
    for node, declared in DECLARED.items():
        values = sections[node]["ros__parameters"]
        assert values == {name: p.default for name, p in declared.items()}
