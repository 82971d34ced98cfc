"""2D patch encoders: an image in, a grid of patch feature vectors out.

Two implementations share one interface (:class:`PatchEncoder`): the small built-in CNN that
the training pipeline trains for the embedded default model, and a Hugging Face CLIP / SigLIP
vision tower loaded from a local directory (LLaVA-3D uses CLIP ViT-L/14-336, layer -2).
"""
from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from scene_llm_ros.embedded import resolve_model_path
from scene_llm_ros.errors import DataFormatError

#: Bumped whenever image preprocessing changes, so features cached under an encoder's
#: identity (training's scene-token cache) are never reused across the change.
PREPROCESSING_VERSION = "area-resize-1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PatchEncoder(abc.ABC):
    """Maps RGB images to a (grid_height, grid_width) grid of ``feature_dim`` vectors.

    An encoder may also classify its patches (:meth:`classify`) into ``class_names``; fusion
    then keeps a semantic map of the surface.
    """

    feature_dim: int
    grid_size: tuple[int, int]
    class_names: tuple[str, ...] = ()

    @abc.abstractmethod
    def encode(self, images: np.ndarray) -> np.ndarray:
        """Encode a batch of images.

        :param images: uint8 (B, H, W, 3) RGB, any size (resized internally).
        :return: float32 (B, grid_height, grid_width, feature_dim); cell (i, j) covers rows
            ``[i * H / grid_height, (i + 1) * H / grid_height)`` and the matching columns.
        """

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """A string that changes whenever the features would change (for caches)."""

    def classify(self, features: np.ndarray) -> np.ndarray | None:
        """Class probabilities of encoded patches, None for an encoder without classes.

        :param features: float32 (..., feature_dim) as :meth:`encode` returns them.
        :return: float32 (..., len(class_names)), summing to 1 over the last axis.
        """
        return None


def _to_tensor(images: np.ndarray, size: tuple[int, int], mean, std) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float32 (B, 3, h, w) resized to ``size`` (h, w)."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (B, H, W, 3), got {images.dtype} {images.shape}")
    height, width = size
    if images.shape[1:3] != (height, width):
        # Area averaging on uint8 before anything becomes float: antialiased like a camera
        # binning pixels, and ~100x cheaper than interpolating the full-size float tensor.
        images = np.stack([cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
                           for image in images])
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    return (x - mean_t) / std_t


@dataclass
class BuiltinEncoderConfig:
    """Configuration of :class:`BuiltinPatchEncoder`.

    :ivar image_height: input height after resizing (pixels, multiple of ``patch_size``).
    :ivar image_width: input width after resizing.
    :ivar patch_size: pixels per patch edge (the CNN's total stride, fixed at 16).
    :ivar feature_dim: output channels per patch.
    :ivar hidden_dim: channels of the middle stages.
    :ivar context_layers: residual dilated 3x3 layers after the last stride; each widens the
        receptive field (dilation 1, 2, 1, 2...) so a patch sees the object around it.
    """

    image_height: int = 192
    image_width: int = 256
    patch_size: int = 16
    feature_dim: int = 128
    hidden_dim: int = 96
    context_layers: int = 2

    def __post_init__(self) -> None:
        if self.patch_size != 16:
            raise ValueError(f"the built-in encoder has a stride of 16, got {self.patch_size}")
        if self.context_layers < 0:
            raise ValueError(f"context_layers must be >= 0, got {self.context_layers}")
        if self.image_height % 16 or self.image_width % 16:
            raise ValueError(f"image size must be a multiple of 16, got "
                             f"{self.image_height}x{self.image_width}")


class BuiltinPatchNet(nn.Module):
    """A small strided CNN: 4x4 stem, two residual 3x3 stages, total stride 16, then residual
    dilated context layers."""

    def __init__(self, config: BuiltinEncoderConfig) -> None:
        super().__init__()
        h = config.hidden_dim
        self.stem = nn.Sequential(nn.Conv2d(3, h // 2, 4, stride=4), nn.GELU())
        self.stage1 = nn.Sequential(nn.Conv2d(h // 2, h // 2, 3, padding=1), nn.GELU())
        self.down1 = nn.Sequential(nn.Conv2d(h // 2, h, 2, stride=2), nn.GELU())
        self.stage2 = nn.Sequential(nn.Conv2d(h, h, 3, padding=1), nn.GELU())
        self.down2 = nn.Conv2d(h, config.feature_dim, 2, stride=2)
        width = config.feature_dim
        self.context = nn.ModuleList(
            nn.Sequential(nn.GELU(), nn.Conv2d(width, width, 3, padding=1 + i % 2,
                                               dilation=1 + i % 2))
            for i in range(config.context_layers))
        self.norm = nn.LayerNorm(config.feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised -> (B, H/16, W/16, feature_dim)."""
        x = self.stem(x)
        x = x + self.stage1(x)
        x = self.down1(x)
        x = x + self.stage2(x)
        x = self.down2(x)
        for layer in self.context:
            x = x + layer(x)
        return self.norm(x.permute(0, 2, 3, 1))


class BuiltinPatchEncoder(PatchEncoder):
    """The small CNN patch encoder of the embedded default model.

    Until a trained checkpoint is loaded it runs with its seeded initial weights, so features
    are deterministic but carry no learned semantics. Stage 0 of training leaves it a linear
    patch classifier (:meth:`set_classes`) over the classes of its training scenes.
    """

    WEIGHTS_NAME = "patch_encoder.safetensors"
    CONFIG_NAME = "patch_encoder.json"
    CLASSES_NAME = "patch_classes.json"
    _CLASS_HEAD_PREFIX = "class_head."

    def __init__(self, config: BuiltinEncoderConfig | None = None, *, seed: int = 0,
                 device: str = "cpu") -> None:
        self.config = config or BuiltinEncoderConfig()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = BuiltinPatchNet(self.config)
        self.net.eval().to(device)
        self.device = device
        self.feature_dim = self.config.feature_dim
        self.grid_size = (self.config.image_height // 16, self.config.image_width // 16)
        self._identity = (f"builtin:{PREPROCESSING_VERSION}:"
                          f"{json.dumps(asdict(self.config), sort_keys=True)}:seed{seed}")
        self.class_head: nn.Linear | None = None

    @property
    def identity(self) -> str:
        return self._identity

    def set_classes(self, class_names: list[str], head: nn.Linear) -> None:
        """Attach a patch classifier: ``head`` maps features to logits over ``class_names``.

        :raises ValueError: when the head's shape does not fit the features and names.
        """
        if (head.in_features, head.out_features) != (self.feature_dim, len(class_names)):
            raise ValueError(f"class head is {head.in_features} -> {head.out_features}, need "
                             f"{self.feature_dim} -> {len(class_names)}")
        self.class_names = tuple(class_names)
        self.class_head = head.eval().to(self.device)

    @torch.inference_mode()
    def classify(self, features: np.ndarray) -> np.ndarray | None:
        if self.class_head is None:
            return None
        logits = self.class_head(torch.from_numpy(np.ascontiguousarray(features, np.float32))
                                 .to(self.device))
        return logits.softmax(dim=-1).cpu().numpy()

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, 3) RGB -> the network's normalised input on the device."""
        return _to_tensor(images, (self.config.image_height, self.config.image_width),
                          IMAGENET_MEAN, IMAGENET_STD).to(self.device)

    @torch.inference_mode()
    def encode(self, images: np.ndarray) -> np.ndarray:
        return self.net(self.preprocess(images)).float().cpu().numpy()

    def save_pretrained(self, directory: Path) -> None:
        """Write config JSON and safetensors weights into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / self.CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2))
        tensors = dict(self.net.state_dict())
        if self.class_head is not None:
            tensors.update({self._CLASS_HEAD_PREFIX + k: v
                            for k, v in self.class_head.state_dict().items()})
            (directory / self.CLASSES_NAME).write_text(json.dumps(list(self.class_names),
                                                                  indent=1))
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()},
                  str(directory / self.WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, directory: Path, *, device: str = "cpu") -> BuiltinPatchEncoder:
        """Load an encoder written by :meth:`save_pretrained`.

        :raises DataFormatError: when files are missing or tensors do not match the config.
        """
        directory = Path(directory)
        try:
            config = BuiltinEncoderConfig(**json.loads((directory / cls.CONFIG_NAME).read_text()))
            state = load_file(str(directory / cls.WEIGHTS_NAME))
        except (OSError, ValueError, TypeError) as exc:
            raise DataFormatError(f"cannot load the built-in patch encoder from {directory}: "
                                  f"{exc}") from exc
        encoder = cls(config, device=device)
        head_state = {k[len(cls._CLASS_HEAD_PREFIX):]: state.pop(k) for k in list(state)
                      if k.startswith(cls._CLASS_HEAD_PREFIX)}
        expected = encoder.net.state_dict()
        mismatched = sorted(k for k in expected.keys() | state.keys()
                            if k not in state or k not in expected
                            or state[k].shape != expected[k].shape)
        if mismatched:
            raise DataFormatError(f"{directory / cls.WEIGHTS_NAME} does not match its config: "
                                  f"mismatched tensors {mismatched}")
        encoder.net.load_state_dict(state)
        if head_state:
            encoder._load_class_head(directory, head_state)
            state.update({cls._CLASS_HEAD_PREFIX + k: v for k, v in head_state.items()})
        digest = hashlib.sha256()
        for key in sorted(state):
            digest.update(key.encode())
            digest.update(state[key].float().numpy().tobytes())
        encoder._identity = f"{encoder._identity}:weights{digest.hexdigest()[:16]}"
        return encoder

    def _load_class_head(self, directory: Path, state: dict[str, torch.Tensor]) -> None:
        try:
            names = json.loads((directory / self.CLASSES_NAME).read_text())
            head = nn.Linear(self.feature_dim, len(names))
            head.load_state_dict(state)
            self.set_classes([str(n) for n in names], head)
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            raise DataFormatError(f"{directory}: the patch class head does not load: "
                                  f"{exc}") from exc


class HFVisionPatchEncoder(PatchEncoder):
    """A CLIP / SigLIP vision tower from a local Hugging Face directory.

    :param path: directory with ``config.json`` and weights (``from_pretrained`` layout); a
        full CLIP/SigLIP checkpoint works too, its vision half is used.
    :param layer: hidden-state index to read (LLaVA uses -2, the penultimate layer).
    :param image_size: input resolution; default from the model config.
    """

    def __init__(self, path: str | Path, *, layer: int = -2, image_size: int | None = None,
                 device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        from transformers import AutoConfig, AutoModel

        path = Path(path)
        if not (path / "config.json").is_file():
            raise DataFormatError(f"{path} is not a Hugging Face model directory (no config.json)")
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        vision_config = getattr(config, "vision_config", config)
        model = AutoModel.from_pretrained(path, local_files_only=True, torch_dtype=dtype)
        self.model = (getattr(model, "vision_model", None) or model).eval().to(device)
        self.device, self.dtype, self.layer = device, dtype, layer
        self.image_size = int(image_size or vision_config.image_size)
        patch = int(vision_config.patch_size)
        side = self.image_size // patch
        self.grid_size = (side, side)
        self.feature_dim = int(vision_config.hidden_size)
        # CLIP prepends a class token, SigLIP does not.
        self._has_class_token = "clip" in str(vision_config.model_type).lower()
        self.mean, self.std = self._normalisation(path, vision_config)
        self._identity = f"hf:{path.resolve()}:layer{layer}:size{self.image_size}"

    @staticmethod
    def _normalisation(path: Path, vision_config) -> tuple[tuple, tuple]:
        processor_file = path / "preprocessor_config.json"
        if processor_file.is_file():
            spec = json.loads(processor_file.read_text())
            if "image_mean" in spec and "image_std" in spec:
                return tuple(spec["image_mean"]), tuple(spec["image_std"])
        if "siglip" in str(vision_config.model_type).lower():
            return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
        return (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)

    @property
    def identity(self) -> str:
        return self._identity

    @torch.inference_mode()
    def encode(self, images: np.ndarray) -> np.ndarray:
        x = _to_tensor(images, (self.image_size, self.image_size), self.mean, self.std)
        out = self.model(pixel_values=x.to(self.device, self.dtype), output_hidden_states=True)
        tokens = out.hidden_states[self.layer]
        if self._has_class_token:
            tokens = tokens[:, 1:]
        b, n, c = tokens.shape
        gh, gw = self.grid_size
        if n != gh * gw:
            raise ValueError(f"vision tower returned {n} patch tokens, expected {gh}x{gw}")
        return tokens.reshape(b, gh, gw, c).float().cpu().numpy()


#: Where a model checkpoint keeps its built-in encoder, and the file naming its encoder.
PATCH_ENCODER_DIR = "patch_encoder"
MODEL_CONFIG_NAME = "scene_llm.json"


def encoder_from_spec(spec: dict, *, checkpoint_dir: str | Path | None = None,
                      device: str = "cpu", seed: int = 0) -> PatchEncoder:
    """Build or load the encoder a model config describes (its ``patch_encoder`` entry).

    :param spec: ``{"type": "builtin"}`` (optionally ``"path": DIR``, a trained encoder
        written by :meth:`BuiltinPatchEncoder.save_pretrained`) or ``{"type": "hf", "path":
        DIR, "layer": -2, "image_size": None}``.
    :param checkpoint_dir: a checkpoint whose ``patch_encoder/`` holds the built-in
        encoder's weights; None loads the spec's ``path`` or builds a fresh seeded one.
    :param device: ``"cpu"`` or ``"cuda:N"``.
    :param seed: seed of a fresh built-in encoder.
    :raises DataFormatError: when the weights or the vision tower cannot be read.
    :raises ValueError: for an unknown encoder type.
    """
    kind = spec.get("type")
    if kind == "builtin":
        if checkpoint_dir is not None:
            return BuiltinPatchEncoder.from_pretrained(Path(checkpoint_dir) / PATCH_ENCODER_DIR,
                                                       device=device)
        if spec.get("path"):
            return BuiltinPatchEncoder.from_pretrained(Path(spec["path"]), device=device)
        return BuiltinPatchEncoder(BuiltinEncoderConfig(), seed=seed, device=device)
    if kind == "hf":
        return HFVisionPatchEncoder(spec["path"], layer=int(spec.get("layer", -2)),
                                    image_size=spec.get("image_size"), device=device)
    raise ValueError(f"patch encoder type must be 'builtin' or 'hf', got {kind!r}")


def model_scene_tokens(spec: str) -> dict:
    """The scene-token fusion settings of the model that ``spec`` names (``embedded`` or a
    model checkpoint directory): ``{"patch_voxel_size_m": .., "max_patch_tokens": ..}``, or
    ``{}`` when ``spec`` is no model or the model does not say.
    """
    path = resolve_model_path(spec) if spec != "builtin" else None
    if path is None or not (path / MODEL_CONFIG_NAME).is_file():
        return {}
    try:
        return dict(json.loads((path / MODEL_CONFIG_NAME).read_text()).get("scene_tokens") or {})
    except (OSError, ValueError, AttributeError) as exc:
        raise DataFormatError(f"cannot read {path / MODEL_CONFIG_NAME}: {exc}") from exc


def load_patch_encoder(spec: str, *, device: str = "cpu", layer: int = -2,
                       image_size: int | None = None) -> PatchEncoder:
    """The patch encoder named by ``spec``, as the nodes' ``patch_encoder`` parameter gives it.

    :param spec: ``builtin`` (the built-in encoder with its initial weights), ``embedded``
        (the encoder of the embedded default model), a directory written by
        :meth:`BuiltinPatchEncoder.save_pretrained`, a model checkpoint directory (the encoder
        its ``scene_llm.json`` names), or a local Hugging Face CLIP/SigLIP directory.
    :param layer: hidden layer of a Hugging Face vision tower given directly.
    :param image_size: input resolution of a Hugging Face vision tower given directly.
    :raises DataFormatError: when ``spec`` is none of these.
    """
    if spec == "builtin":
        return BuiltinPatchEncoder(device=device)
    path = resolve_model_path(spec)
    if (path / BuiltinPatchEncoder.CONFIG_NAME).is_file():
        return BuiltinPatchEncoder.from_pretrained(path, device=device)
    if (path / MODEL_CONFIG_NAME).is_file():
        try:
            model_spec = json.loads((path / MODEL_CONFIG_NAME).read_text())["patch_encoder"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataFormatError(f"{path / MODEL_CONFIG_NAME} names no patch encoder: "
                                  f"{exc}") from exc
        return encoder_from_spec(model_spec, checkpoint_dir=path, device=device)
    if (path / "config.json").is_file():
        return HFVisionPatchEncoder(path, layer=layer, image_size=image_size, device=device)
    raise DataFormatError(
        f"patch encoder {spec!r} is neither 'builtin', 'embedded', a built-in encoder directory "
        f"({BuiltinPatchEncoder.CONFIG_NAME}), a model checkpoint ({MODEL_CONFIG_NAME}), nor a "
        "Hugging Face vision model directory (config.json)")
