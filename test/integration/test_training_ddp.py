"""DDP on the CPU: two processes under torchrun (gloo) train a few steps and stay in sync."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from scene_llm_ros.data.synth import SynthConfig, write_dataset

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_two_processes_end_with_identical_weights(tmp_path):
    data = tmp_path / "synth"
    write_dataset(data, SynthConfig(width=160, height=120, num_frames=10, write_sens=False,
                                    split_ratios=(0.5, 0.25, 0.25)), scenes=4, seed=11)
    config = {
        "seed": 0,
        # Two train scenes: each rank fuses one, then both read the other's cache file.
        "data": {"root": str(data), "split": "train", "max_examples_per_source": 4,
                 "sources": {"scanrefer": 1.0, "scanqa": 1.0, "scan2cap": 1.0}},
        "fusion": {"max_patch_tokens": 48},
        "model": {"init": "tiny", "tiny": {"vocab_size": 400}},
        # LoRA dropout differs per rank; DDP must still keep the replicas identical.
        "stage": {"name": "ddp", "trainable": ["lora", "projector", "grounding_head"],
                  "lora": {"rank": 4, "alpha": 8, "dropout": 0.1}},
        "optim": {"lr": 5e-3, "max_steps": 3, "examples_per_step": 2},
        "run": {"out_dir": str(tmp_path / "run"), "checkpoint_every": 2, "log_every": 1},
    }
    config_path = tmp_path / "ddp.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "training", "--config", str(config_path)]
    completed = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True,
                               text=True, timeout=240)
    (tmp_path / "torchrun.log").write_text(completed.stderr)
    rank0 = [line for line in completed.stderr.splitlines() if line.startswith("[rank0]")]
    assert completed.returncode == 0, "\n".join(rank0[-30:]) + completed.stderr[-3000:]

    run = tmp_path / "run"
    digests = json.loads((run / "rank_digests.json").read_text())
    assert digests["world_size"] == 2
    assert len(digests["digests"]) == 2 and len(set(digests["digests"])) == 1, digests
    state = json.loads((run / "final" / "training_state" / "state.json").read_text())
    assert state["step"] == 3 and state["world_size"] == 2
    # 2 processes x 2 examples x 3 steps = 12 samples: each rank's whole 6-sample shard.
    assert state["cursor"] == {"epoch": 0, "offset": 6}
    assert (run / "checkpoints" / "step_000002" / "scene_llm.safetensors").is_file()
    assert (run / "final" / "lora_adapter" / "adapter_model.safetensors").is_file()
    # Only rank 0 writes TensorBoard events.
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
