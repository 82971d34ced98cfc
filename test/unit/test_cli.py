"""The scene-llm command line."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from scene_llm_ros import __version__
from scene_llm_ros.cli import COMMAND_MODULES, build_parser, main


def verbs() -> list[str]:
    """The verb each command module registers (modules use _, verbs may use -)."""
    return [name.replace("_", "-") for name in COMMAND_MODULES]


def test_entry_point_help_lists_every_command():
    exe = shutil.which("scene-llm")
    assert exe, "the scene-llm console script is not installed (run make setup)"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: scene-llm" in out
    for name in verbs():
        assert name in out, f"{name} missing from --help"


def test_version_and_no_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 2  # no verb: help and a usage error status


def test_every_command_has_help():
    parser = build_parser()
    for name in verbs():
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0


@pytest.mark.parametrize("verb, expected", [("run", "PASSIVE"), ("evaluate", "PASSIVE"),
                                            ("synth", None)])
def test_node_verbs_ask_for_passive_openmp(monkeypatch, verb, expected):
    import os

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    assert os.environ.get("OMP_WAIT_POLICY") == expected
