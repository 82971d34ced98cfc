"""`scene-llm run` (fusion + inference in one process) answering `scene-llm ask` over DDS."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
import yaml
from dds_helpers import Camera, interrupt, wait_for

from scene_llm_ros.data.synth import SynthConfig, generate_scene
from scene_llm_ros.model import build_tiny_scene_llm

pytestmark = pytest.mark.dds


def ask(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("scene-llm"), "ask", *args, "--json", "--timeout", "60"],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())


def test_run_serves_ask_with_the_scene_shared_in_memory(ros, tmp_path):
    checkpoint = tmp_path / "model"
    build_tiny_scene_llm(["what is on the table ?", "a chair ."] * 20,
                         vocab_size=300).save_pretrained(checkpoint)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "fusion_node": {"ros__parameters": {"qos_reliability": "reliable", "queue_size": 50,
                                            "patches_rate_hz": 0.0}},
        "inference_node": {"ros__parameters": {"max_new_tokens": 4}}}))
    server = subprocess.Popen([shutil.which("scene-llm"), "run", "--checkpoint", str(checkpoint),
                               "--params", str(params)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    try:
        camera = Camera(ros)
        wait_for(lambda: camera.subscribed() or server.poll() is not None, 120,
                 "scene-llm run to subscribe")
        assert server.poll() is None, server.stdout.read()
        empty = ask("what is on the table ?")
        assert empty.returncode == 1 and json.loads(empty.stdout)["error_code"] == "NO_SCENE"
        scene = generate_scene(2, "scene9000_00", SynthConfig(
            width=160, height=120, num_frames=15, noise=False, write_sens=False))
        for frame in scene.frames:
            camera.send(frame)
            time.sleep(0.05)
        answered = wait_for(lambda: (r := ask("what is on the table ?")).returncode == 0 and r,
                            60, "an answer")
        result = json.loads(answered.stdout)
        assert result["success"] and result["frame_id"] == "map"
        assert result["scene_version"] >= len(scene.frames)
        assert 1 <= result["tokens_generated"] <= 4
        bad = ask("   ")
        assert bad.returncode == 1 and json.loads(bad.stdout)["error_code"] == "BAD_REQUEST"
    finally:
        interrupt(server)
    assert server.returncode == 0, server.stdout.read()
