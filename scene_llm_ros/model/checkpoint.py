"""Checkpoint files: the model's own safetensors weights and atomic directory writes."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from scene_llm_ros.errors import DataFormatError
from scene_llm_ros.fusion.encoders import MODEL_CONFIG_NAME, PATCH_ENCODER_DIR
from scene_llm_ros.model.errors import CheckpointMismatchError

# The fusion node finds a checkpoint's encoder by these names too, so they live there.
CONFIG_NAME = MODEL_CONFIG_NAME
ENCODER_DIR = PATCH_ENCODER_DIR
WEIGHTS_NAME = "scene_llm.safetensors"
LLM_DIR = "llm"
LORA_DIR = "lora_adapter"
#: Config file of a side module (segment listener, answerer) in its own directory.
MODULE_CONFIG_NAME = "config.json"


#: Prefix of the extra tensors holding LLM embedding rows the checkpoint added (see
#: :meth:`~scene_llm_ros.model.modeling_scene_llm.SceneLlm.save_pretrained`).
ADDED_ROWS_PREFIX = "llm_added_rows."


def save_weights(modules: dict[str, nn.Module], path: Path, *,
                 extra: dict[str, torch.Tensor] | None = None) -> None:
    """Write the parameters and persistent buffers of ``modules`` as ``{prefix}.{name}``.

    :param extra: more tensors, keyed by names starting with :data:`ADDED_ROWS_PREFIX`.
    """
    state = {f"{prefix}.{name}": tensor.detach().contiguous().cpu()
             for prefix, module in modules.items()
             for name, tensor in module.state_dict().items()}
    for name, tensor in (extra or {}).items():
        if not name.startswith(ADDED_ROWS_PREFIX):
            raise ValueError(f"extra tensor names must start with {ADDED_ROWS_PREFIX!r}, got "
                             f"{name!r}")
        state[name] = tensor.detach().contiguous().cpu()
    save_file(state, str(path))


def load_weights(modules: dict[str, nn.Module], path: Path) -> dict[str, torch.Tensor]:
    """Load weights written by :func:`save_weights` into ``modules``.

    :return: the extra tensors (names starting with :data:`ADDED_ROWS_PREFIX`), if any.
    :raises CheckpointMismatchError: naming every missing, unexpected or wrongly shaped tensor,
        or when the file is not a readable safetensors file.
    """
    try:
        state = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise CheckpointMismatchError(f"cannot read weights {path}: {exc}") from exc
    extra = {name: state.pop(name) for name in list(state)
             if name.startswith(ADDED_ROWS_PREFIX)}
    expected = {f"{prefix}.{name}": tensor for prefix, module in modules.items()
                for name, tensor in module.state_dict().items()}
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    wrong_shape = sorted(f"{k} (file {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
                         for k in expected.keys() & state.keys()
                         if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        raise CheckpointMismatchError(f"{path} does not match its config: missing tensors "
                                      f"{missing}, unexpected tensors {unexpected}, wrong "
                                      f"shapes {wrong_shape}")
    for prefix, module in modules.items():
        module.load_state_dict({name[len(prefix) + 1:]: tensor for name, tensor in state.items()
                                if name.startswith(prefix + ".")})
    return extra


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``target`` that replaces it on success.

    A reader sees either the old or the new directory, never a half-written one; the swap of
    an existing target is two renames, and on failure the temporary directory is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    temporary.mkdir()
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if target.exists():
        retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, retired)
        os.replace(temporary, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(temporary, target)


class SideModuleFiles:
    """``save_pretrained`` / ``from_pretrained`` of a side module (segment listener, box
    completer, answerer): a JSON config and safetensors weights in its own directory.

    A subclass (also an ``nn.Module`` whose ``config`` is a dataclass of ``config_class``)
    names its ``config_class``, ``weights_name``, ``weights_prefix`` and ``description``.
    """

    config_class: type
    weights_name: str
    weights_prefix: str
    description: str

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and safetensors weights into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODULE_CONFIG_NAME).write_text(
            json.dumps(dataclasses.asdict(self.config), indent=1) + "\n")
        save_weights({self.weights_prefix: self}, directory / self.weights_name)

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str = "cpu"):
        """Load a module written by :meth:`save_pretrained`, in eval mode.

        :raises DataFormatError: when the config is missing or invalid.
        :raises CheckpointMismatchError: (a ``DataFormatError``) when the weights are unreadable
            or do not match the config.
        """
        directory = Path(directory)
        try:
            config = cls.config_class(**json.loads((directory / MODULE_CONFIG_NAME).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise DataFormatError(f"cannot load the {cls.description} from {directory}: "
                                  f"{exc}") from exc
        module = cls(config)
        load_weights({cls.weights_prefix: module}, directory / cls.weights_name)
        return module.to(device).eval()
