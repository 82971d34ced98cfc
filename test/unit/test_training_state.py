"""Resumable state: optimizer in safetensors + JSON, the LR schedule, the data cursor."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from training.checkpoints import latest_checkpoint, prune_checkpoints, step_dir
from training.config import OptimConfig
from training.errors import ResumeError
from training.sampling import ShardCursor
from training.schedule import lr_at
from training.state import STATE_DIR, load_training_state, save_training_state


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 4, generator=generator)
    loss = model(x).pow(2).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _optimizer(model: nn.Module) -> torch.optim.AdamW:
    return torch.optim.AdamW([{"params": [model[0].weight], "weight_decay": 0.1},
                              {"params": [model[0].bias], "weight_decay": 0.0}], lr=1e-2)


def test_optimizer_state_round_trips_without_pickle(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    optimizer = _optimizer(model)
    for seed in range(3):
        _step(model, optimizer, seed)
    names = ["0.weight", "0.bias"]
    rng = torch.get_rng_state()
    save_training_state(tmp_path, optimizer=optimizer, param_names=names, step=3,
                        cursor={"epoch": 1, "offset": 2}, rng_states=[rng])
    files = sorted(p.name for p in (tmp_path / STATE_DIR).iterdir())
    assert files == ["optimizer.safetensors", "rng.safetensors", "state.json"]

    restored_model = copy.deepcopy(model)
    restored = _optimizer(restored_model)
    state = load_training_state(tmp_path, optimizer=restored, param_names=names)
    assert (state.step, state.cursor, state.world_size) == (3, {"epoch": 1, "offset": 2}, 1)
    assert torch.equal(state.rng_states[0], rng)
    assert restored.param_groups[0]["betas"] == optimizer.param_groups[0]["betas"]
    # The next step is bit-identical to the uninterrupted optimizer's.
    _step(model, optimizer, 7)
    _step(restored_model, restored, 7)
    for a, b in zip(model.parameters(), restored_model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_loading_state_for_other_parameters_fails(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3))
    optimizer = _optimizer(model)
    _step(model, optimizer, 0)
    save_training_state(tmp_path, optimizer=optimizer, param_names=["0.weight", "0.bias"],
                        step=1, cursor={"epoch": 0, "offset": 1},
                        rng_states=[torch.get_rng_state()])
    with pytest.raises(ResumeError, match="trained other parameters"):
        load_training_state(tmp_path, optimizer=_optimizer(model),
                            param_names=["0.weight", "lora.bias"])
    with pytest.raises(ResumeError, match="cannot read the training state"):
        load_training_state(tmp_path / "missing", optimizer=optimizer, param_names=[])


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    optim = OptimConfig(lr=1.0, warmup_steps=4, max_steps=14, min_lr_ratio=0.1)
    assert [lr_at(s, optim) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(4, optim) == pytest.approx(1.0)
    assert lr_at(9, optim) == pytest.approx(0.55)
    assert lr_at(14, optim) == pytest.approx(0.1)
    assert all(lr_at(s, optim) >= lr_at(s + 1, optim) for s in range(4, 20))


def test_shard_cursor_splits_epochs_across_ranks_and_resumes():
    data = list(range(7))
    ranks = [ShardCursor(data, rank=r, world_size=2, seed=3) for r in range(2)]
    epoch0 = [c.take(4) for c in ranks]  # 7 samples padded to 2 x 4
    assert set(epoch0[0]) | set(epoch0[1]) == set(data)
    cursor = ranks[0]
    cursor.take(3)
    saved = json.loads(json.dumps(cursor.state()))
    expected = cursor.take(6)  # crosses into epoch 2
    fresh = ShardCursor(data, rank=0, world_size=2, seed=3)
    fresh.load_state(saved)
    assert fresh.take(6) == expected
    assert saved == {"epoch": 1, "offset": 3}


def test_latest_checkpoint_needs_a_complete_state_and_pruning_keeps_the_newest(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3))
    optimizer = _optimizer(model)
    assert latest_checkpoint(tmp_path) is None
    for step in (2, 4, 6):
        save_training_state(step_dir(tmp_path, step), optimizer=optimizer,
                            param_names=["0.weight", "0.bias"], step=step,
                            cursor={"epoch": 0, "offset": 0},
                            rng_states=[torch.get_rng_state()])
    step_dir(tmp_path, 8).mkdir()  # a crash before the state was written
    assert latest_checkpoint(tmp_path) == step_dir(tmp_path, 6)
    prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == \
        ["step_000006", "step_000008"]


def test_step_stats_average_grounding_over_grounded_examples_only():
    from scene_llm_ros.model import GroundingLosses, SceneLlmLoss
    from training.step_stats import StepStats, example_vector

    def loss(total, language, grounding=None):
        parts = None if grounding is None else GroundingLosses(
            *(torch.tensor(v) for v in grounding))
        return SceneLlmLoss(torch.tensor(total), torch.tensor(language), parts)

    rank0 = StepStats.local_vector([example_vector(loss(2.0, 2.0)),
                                    example_vector(loss(6.0, 1.0, (5.0, 2.0, 1.0, 1.0, 2.0, 0.6)))],
                                   tokens=100, seconds=2.0)
    rank1 = StepStats.local_vector([example_vector(loss(4.0, 3.0, (1.0, 0.5, 0.2, 0.1, 0.4, 0.2))),
                                    example_vector(loss(4.0, 4.0))], tokens=300, seconds=2.0)
    stats = StepStats.from_reduced(rank0 + rank1, world_size=2)
    assert (stats.total, stats.language) == (4.0, 2.5)
    assert stats.grounding == pytest.approx({"total": 3.0, "token": 1.25, "box_l1": 0.6,
                                             "box_iou": 0.55, "label": 1.2,
                                             "token_class": 0.4})
    assert stats.tokens_per_s == 200.0  # 400 tokens in 2 s of concurrent work
    alone = StepStats.from_reduced(StepStats.local_vector([example_vector(loss(1.0, 1.0))],
                                                          tokens=10, seconds=1.0), world_size=1)
    assert alone.grounding is None
