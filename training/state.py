"""Resumable training state without pickle: safetensors for tensors, JSON for the rest.

``torch.save`` of an optimizer is a pickle, which can run code when loaded. Instead the
optimizer's per-parameter tensors (AdamW ``step``, ``exp_avg``, ``exp_avg_sq``) go into
``optimizer.safetensors`` under ``<parameter name>/<key>``, and its param groups, any
non-tensor state, the step, the data cursor and the world size into ``state.json``. Every
rank's torch RNG state goes into ``rng.safetensors``. The learning rate is a pure function of
the step (:func:`training.schedule.lr_at`), so the schedule needs no state of its own.
Parameters are keyed by name, so a resumed run must train the same parameters.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from scene_llm_ros.model.checkpoint import atomic_directory
from training.errors import ResumeError

STATE_DIR = "training_state"
STATE_JSON = "state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"
STATE_FORMAT_VERSION = 1


@dataclass
class TrainingState:
    """What a resumed run continues from.

    :ivar step: optimizer steps done.
    :ivar cursor: the data sampler position (:meth:`training.sampling.ShardCursor.state`).
    :ivar rng_states: uint8 torch CPU RNG state per rank.
    """

    step: int
    cursor: dict
    rng_states: list[torch.Tensor]
    world_size: int


def _flatten_optimizer(optimizer: torch.optim.Optimizer, names: list[str]
                       ) -> tuple[dict[str, torch.Tensor], dict]:
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict] = {}
    for index, values in state_dict["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{names[index]}/{key}"] = value.detach().cpu().contiguous().clone()
            else:
                other.setdefault(names[index], {})[key] = value
    groups = [{**{k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()
                  if k != "params"},
               "params": [names[i] for i in group["params"]]}
              for group in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "non_tensor_state": other}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict, names: list[str]
                         ) -> dict:
    index = {name: i for i, name in enumerate(names)}
    groups = []
    for group in meta["param_groups"]:
        unknown = [name for name in group["params"] if name not in index]
        if unknown:
            raise ResumeError(f"the checkpoint's optimizer trains parameters this run does not: "
                              f"{unknown[:5]}")
        restored = {k: (tuple(v) if k == "betas" else v) for k, v in group.items()}
        restored["params"] = [index[name] for name in group["params"]]
        groups.append(restored)
    covered = {name for group in meta["param_groups"] for name in group["params"]}
    if covered != set(names):
        raise ResumeError(f"this run trains parameters the checkpoint's optimizer does not: "
                          f"{sorted(set(names) - covered)[:5]}")
    state: dict[int, dict] = {}
    for key, tensor in tensors.items():
        name, _, field = key.rpartition("/")
        state.setdefault(index[name], {})[field] = tensor
    for name, values in meta["non_tensor_state"].items():
        state.setdefault(index[name], {}).update(values)
    return {"state": state, "param_groups": groups}


def save_training_state(checkpoint_dir: str | Path, *, optimizer: torch.optim.Optimizer,
                        param_names: list[str], step: int, cursor: dict,
                        rng_states: list[torch.Tensor], extra: dict | None = None) -> Path:
    """Write ``<checkpoint_dir>/training_state/`` atomically.

    :param param_names: names of the optimizer's parameters in their optimizer order.
    :param extra: more JSON facts to record (config digest, stage name).
    :return: the state directory.
    """
    tensors, optimizer_meta = _flatten_optimizer(optimizer, param_names)
    target = Path(checkpoint_dir) / STATE_DIR
    with atomic_directory(target) as temporary:
        save_file(tensors, str(temporary / OPTIMIZER_FILE))
        save_file({f"torch_cpu_rank{r}": s.contiguous() for r, s in enumerate(rng_states)},
                  str(temporary / RNG_FILE))
        document = {"format": STATE_FORMAT_VERSION, "step": int(step), "cursor": cursor,
                    "world_size": len(rng_states), "param_names": param_names,
                    "optimizer": optimizer_meta, **(extra or {})}
        (temporary / STATE_JSON).write_text(json.dumps(document, indent=1) + "\n",
                                            encoding="utf-8")
    return target


def has_training_state(checkpoint_dir: str | Path) -> bool:
    """Whether a complete state was written (the directory is renamed in when complete)."""
    return (Path(checkpoint_dir) / STATE_DIR / STATE_JSON).is_file()


def load_training_state(checkpoint_dir: str | Path, *, optimizer: torch.optim.Optimizer,
                        param_names: list[str]) -> TrainingState:
    """Restore the optimizer in place and return the step, cursor and RNG states.

    :raises ResumeError: when the files are missing or unreadable, or the checkpoint trained
        other parameters.
    """
    directory = Path(checkpoint_dir) / STATE_DIR
    try:
        document = json.loads((directory / STATE_JSON).read_text(encoding="utf-8"))
        tensors = load_file(str(directory / OPTIMIZER_FILE))
        rng = load_file(str(directory / RNG_FILE))
    except (OSError, ValueError, SafetensorError) as exc:
        raise ResumeError(f"cannot read the training state in {directory}: {exc}") from exc
    if document.get("format") != STATE_FORMAT_VERSION:
        raise ResumeError(f"{directory} has state format {document.get('format')}, this code "
                          f"reads {STATE_FORMAT_VERSION}")
    if document["param_names"] != param_names:
        raise ResumeError(f"{directory} trained other parameters than this run's stage "
                          f"({len(document['param_names'])} vs {len(param_names)} tensors)")
    optimizer.load_state_dict(_unflatten_optimizer(tensors, document["optimizer"], param_names))
    world = int(document["world_size"])
    return TrainingState(step=int(document["step"]), cursor=document["cursor"],
                         rng_states=[rng[f"torch_cpu_rank{r}"] for r in range(world)],
                         world_size=world)
