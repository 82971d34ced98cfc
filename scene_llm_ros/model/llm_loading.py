"""Loading the language model: dtype, device, bitsandbytes quantization and LoRA adapters."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from scene_llm_ros.errors import DataFormatError

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: None loads full precision; "4bit" is NF4 with double quantization; "8bit" is LLM.int8().
QUANTIZATIONS = (None, "4bit", "8bit")
LORA_DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32"``/``"bfloat16"``/``"float16"`` (or the torch dtype itself) to a dtype.

    :raises ValueError: for any other value.
    """
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")


def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a device that exists on this machine.

    :raises ValueError: for another string or a CUDA device that is not present.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu' or 'cuda:N', got {device!r}") from exc
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda:N', got {device!r}")
    if resolved.type == "cuda":
        count = torch.cuda.device_count()
        index = resolved.index or 0
        if index >= count:
            raise ValueError(f"device {device!r} requested but {count} CUDA devices exist")
    return resolved


def quantization_config(quantization: str | None, dtype: torch.dtype):
    """The bitsandbytes config of ``quantization`` (None for full precision).

    :raises ValueError: for a value outside :data:`QUANTIZATIONS`.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {list(QUANTIZATIONS)}, got "
                         f"{quantization!r}")
    if quantization is None:
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=dtype)
    return BitsAndBytesConfig(load_in_8bit=True)


def load_llm(path: str | Path, *, dtype: str | torch.dtype = "float32", device: str = "cpu",
             quantization: str | None = None):
    """A causal LM from a local Hugging Face directory, in eval mode.

    :param path: directory with ``config.json`` and safetensors weights.
    :param dtype: weight (or, quantized, compute) dtype.
    :param device: ``"cpu"`` or ``"cuda:N"``.
    :param quantization: None, ``"4bit"`` (NF4) or ``"8bit"``; bitsandbytes quantizes the
        Linear layers at load time (on the CPU too, for layer sizes that are multiples of 64).
    :raises DataFormatError: when the directory is not a model directory.
    :raises ValueError: for a bad dtype, device or quantization.
    """
    from transformers import AutoModelForCausalLM

    path = Path(path)
    torch_dtype = resolve_dtype(dtype)
    target = resolve_device(device)
    bnb_config = quantization_config(quantization, torch_dtype)
    if not (path / "config.json").is_file():
        raise DataFormatError(f"{path} is not a Hugging Face model directory (no config.json)")
    if bnb_config is None:
        llm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True,
                                                   dtype=torch_dtype, use_safetensors=True)
        llm.to(target)
    else:
        # bitsandbytes places (and quantizes) weights while loading, so the device goes here.
        llm = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, dtype=torch_dtype, use_safetensors=True,
            quantization_config=bnb_config, device_map={"": str(target)})
    logger.info("loaded LLM %s (%s, %s, quantization %s)", path, torch_dtype, target,
                quantization)
    return llm.eval()


def load_tokenizer(path: str | Path):
    """The tokenizer stored with an LLM (``tokenizer.json`` etc.)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(Path(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"cannot load a tokenizer from {path}: {exc}") from exc


def is_quantized(llm) -> bool:
    return bool(getattr(llm, "is_loaded_in_4bit", False) or getattr(llm, "is_loaded_in_8bit",
                                                                    False))


def is_lora(llm) -> bool:
    from peft import PeftModel

    return isinstance(llm, PeftModel)


def wrap_with_lora(llm, *, rank: int = 16, alpha: int = 32, dropout: float = 0.05,
                   target_modules: tuple[str, ...] = LORA_DEFAULT_TARGETS):
    """Wrap the LLM with fresh, trainable LoRA adapters (base weights frozen).

    :return: the ``peft.PeftModel``.
    :raises ValueError: when the LLM already carries adapters.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if is_lora(llm):
        raise ValueError("the LLM already has LoRA adapters")
    if is_quantized(llm):
        llm = prepare_model_for_kbit_training(llm, use_gradient_checkpointing=False)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=list(target_modules), task_type="CAUSAL_LM")
    return get_peft_model(llm, config)


def load_lora(llm, adapter_dir: str | Path, *, trainable: bool = False):
    """Apply a LoRA adapter saved with ``save_pretrained`` by peft.

    :raises DataFormatError: when ``adapter_dir`` has no ``adapter_config.json``.
    :raises ValueError: when the LLM already carries adapters.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise DataFormatError(f"{adapter_dir} is not a LoRA adapter directory "
                              f"(no adapter_config.json)")
    if is_lora(llm):
        raise ValueError("the LLM already has LoRA adapters")
    return PeftModel.from_pretrained(llm, adapter_dir, is_trainable=trainable)


def base_model_state_dict(peft_llm) -> dict[str, torch.Tensor]:
    """The base LLM's weights under their original names, without LoRA tensors.

    peft injects adapters in place, renaming ``x.weight`` to ``x.base_layer.weight``; this
    undoes that so the base model can be saved as a plain Hugging Face checkpoint.
    """
    state = {}
    for name, tensor in peft_llm.get_base_model().state_dict().items():
        if ".lora_" in name:
            continue
        state[name.replace(".base_layer.", ".")] = tensor
    return state
