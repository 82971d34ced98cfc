"""The embedded default model: a small scene LLM trained by our own pipeline and shipped in
the package, so every command works without a model hub (recipe: training/README.md).

``embedded`` is accepted wherever a model or patch encoder path is: the inference node's
``checkpoint``, the fusion node's ``patch_encoder``, ``--checkpoint`` of the commands.
"""
from __future__ import annotations

from pathlib import Path

#: The name that stands for the embedded model.
EMBEDDED = "embedded"
#: Where the package keeps it (``SceneLlm.save_pretrained`` layout).
EMBEDDED_MODEL_DIR = Path(__file__).resolve().parent / "embedded_model"


def resolve_model_path(spec: str | Path) -> Path:
    """The directory ``spec`` names: the embedded model's for ``embedded``, else ``spec``."""
    return EMBEDDED_MODEL_DIR if str(spec) == EMBEDDED else Path(spec).expanduser()
