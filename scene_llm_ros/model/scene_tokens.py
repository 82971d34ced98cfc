"""Scene, object and prompt-point tokens: snapshot arrays to embeddings in the LLM's input
space."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from scene_llm_ros.fusion.snapshot import SceneSnapshot
from scene_llm_ros.grounding.segment_features import SEGMENT_GEOMETRY_FEATURES, SegmentFeatures
from scene_llm_ros.model.configuration_scene_llm import SceneLlmConfig
from scene_llm_ros.model.errors import EmptySceneError, InvalidPromptPointsError, SceneFeatureError
from scene_llm_ros.model.position_embedding import (
    FourierPositionEmbedding,
    relative_positions,
    scene_origin,
)
from scene_llm_ros.model.referents import ReferentInputs


@dataclass(frozen=True)
class SceneInputs:
    """A snapshot's tokens, validated and ready for the model: K patch tokens, then S object
    tokens.

    :ivar positions: float32 (K, 3) patch token positions, scene frame, metres.
    :ivar relative: float32 (K, 3) positions relative to ``origin``.
    :ivar features: float32 (K, C) patch features.
    :ivar origin: float64 (3,) :func:`scene_origin` of the snapshot's bounds.
    :ivar scene_version: the snapshot's version.
    :ivar fingerprint: digest of positions and features (and object features), so two
        snapshots that share a version number but not their content never share a cached
        prefix.
    :ivar object_features: float32 (S, F) object token features
        (:attr:`~scene_llm_ros.grounding.segment_features.SegmentFeatures.objects`).
    :ivar object_relative: float32 (S, 3) object centres relative to ``origin``.
    """

    positions: torch.Tensor
    relative: torch.Tensor
    features: torch.Tensor
    origin: np.ndarray
    scene_version: int
    fingerprint: str
    object_features: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0))
    object_relative: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 3))

    @property
    def num_patch_tokens(self) -> int:
        return len(self.positions)

    @property
    def num_tokens(self) -> int:
        """Patch plus object tokens (the ``<scene>`` placeholders of a prompt)."""
        return len(self.positions) + len(self.object_features)


def prepare_scene_inputs(snapshot: SceneSnapshot, feature_dim: int,
                         objects: SegmentFeatures | None = None) -> SceneInputs:
    """Validate a snapshot and convert its tokens to tensors.

    :param snapshot: the fused scene.
    :param feature_dim: channels the model expects.
    :param objects: the snapshot's class segments that become object tokens; None: none.
    :raises EmptySceneError: when the snapshot has no tokens or no finite bounds.
    :raises SceneFeatureError: when shapes disagree or values are not finite.
    """
    if snapshot.empty:
        raise EmptySceneError(f"scene version {snapshot.scene_version} has no tokens yet")
    origin = scene_origin(snapshot.bounds_min, snapshot.bounds_max)
    positions = np.asarray(snapshot.positions)
    features = np.asarray(snapshot.features)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise SceneFeatureError(f"snapshot positions must be (K, 3), got {positions.shape}")
    if features.shape != (len(positions), feature_dim):
        raise SceneFeatureError(f"snapshot features must be ({len(positions)}, {feature_dim}) "
                                f"for this model, got {features.shape}")
    if not np.isfinite(positions).all():
        raise SceneFeatureError("snapshot positions contain NaN or infinite values")
    features32 = features.astype(np.float32)
    if not np.isfinite(features32).all():
        raise SceneFeatureError("snapshot features contain NaN or infinite values")
    positions32 = positions.astype(np.float32)
    digest = hashlib.blake2b(positions32.tobytes(), digest_size=16)
    digest.update(features.tobytes())
    object_features = np.zeros((0, 0), np.float32)
    centers = np.zeros((0, 3), np.float32)
    if objects is not None and len(objects.segments):
        object_features = np.asarray(objects.objects, np.float32)
        centers = np.array([segment.center for segment in objects.segments], np.float32)
        if not (np.isfinite(object_features).all() and np.isfinite(centers).all()):
            raise SceneFeatureError("object token features contain NaN or infinite values")
        digest.update(object_features.tobytes())
    return SceneInputs(positions=torch.from_numpy(positions32),
                       relative=relative_positions(positions32, origin),
                       features=torch.from_numpy(features32), origin=origin,
                       scene_version=int(snapshot.scene_version),
                       fingerprint=digest.hexdigest(),
                       object_features=torch.from_numpy(object_features),
                       object_relative=relative_positions(centers, origin))


def validate_prompt_points(prompt_points) -> np.ndarray:
    """Clicked points as float64 (M, 3); None or an empty array gives (0, 3).

    :raises InvalidPromptPointsError: when the array is not (M, 3) or not finite.
    """
    if prompt_points is None:
        return np.zeros((0, 3))
    points = np.asarray(prompt_points, dtype=np.float64)
    if points.size == 0:
        return np.zeros((0, 3))
    if points.ndim != 2 or points.shape[1] != 3:
        raise InvalidPromptPointsError(f"prompt points must be an (M, 3) array, got shape "
                                       f"{points.shape}")
    if not np.isfinite(points).all():
        bad = np.flatnonzero(~np.isfinite(points).all(axis=1)).tolist()
        raise InvalidPromptPointsError(f"prompt points {bad} are not finite: {points[bad]}")
    return points


class SceneTokenEncoder(nn.Module):
    """Lift features, add the 3D position embedding, project into the LLM's hidden size.

    Prompt points go through the same position embedding plus a learned "point" type vector
    and the same projector, so the LLM sees clicks in the coordinates of the scene tokens.
    Object tokens (when ``config.object_tokens``) lift their class, colour and size features
    with their own layer, add the position embedding of their centre and an "object" type
    vector, share the projector too, and add the LLM's own embedding of their class's name
    (``class_embeddings``), so the words of a question find the objects they name. Referent
    tokens (when ``config.referent_tokens``) are object tokens with a vector for their rank
    instead of the type vector, plus a vector scaled by the listener's probability.
    """

    def __init__(self, config: SceneLlmConfig) -> None:
        super().__init__()
        self.feature_norm = nn.LayerNorm(config.feature_dim)
        self.feature_lift = nn.Linear(config.feature_dim, config.scene_dim)
        self.position_embedding = FourierPositionEmbedding(
            config.scene_dim, num_frequencies=config.position_frequencies,
            min_wavelength_m=config.min_wavelength_m, max_wavelength_m=config.max_wavelength_m)
        self.point_type_embedding = nn.Parameter(torch.randn(config.scene_dim) * 0.02)
        # LLaVA's "mlp2x_gelu" projector.
        self.projector = nn.Sequential(nn.Linear(config.scene_dim, config.llm_hidden_size),
                                       nn.GELU(),
                                       nn.Linear(config.llm_hidden_size, config.llm_hidden_size))
        self.object_lift: nn.Linear | None = None
        self.object_feature_dim = 0
        if config.object_tokens or config.referent_tokens:
            self.object_feature_dim = len(config.object_classes) + SEGMENT_GEOMETRY_FEATURES
            self.object_lift = nn.Linear(self.object_feature_dim, config.scene_dim)
        if config.object_tokens:
            self.object_type_embedding = nn.Parameter(torch.randn(config.scene_dim) * 0.02)
        if config.referent_tokens:
            self.referent_rank_embedding = nn.Parameter(
                torch.randn(config.referent_tokens, config.scene_dim) * 0.02)
            self.referent_probability_embedding = nn.Parameter(
                torch.randn(config.scene_dim) * 0.02)

    @property
    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        weight = self.feature_lift.weight
        return weight.device, weight.dtype

    def scene_embeddings(self, scene: SceneInputs,
                         class_embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """(K + S, llm_hidden_size) embeddings of the patch tokens, then the object tokens.

        :param class_embeddings: (len(object_classes), llm_hidden_size) the LLM's embedding of
            each object class's name, added to the object tokens of that class.
        :raises SceneFeatureError: when the scene has object tokens this encoder cannot read.
        """
        device, dtype = self._device_dtype
        features = self.feature_lift(self.feature_norm(scene.features.to(device, dtype)))
        tokens = features + self.position_embedding(scene.relative.to(device))
        if not len(scene.object_features):
            return self.projector(tokens)
        if not hasattr(self, "object_type_embedding"):
            raise SceneFeatureError("this model reads no object tokens")
        objects = self._object_embeddings(scene.object_features, scene.object_relative,
                                          self.object_type_embedding, class_embeddings)
        return torch.cat([self.projector(tokens), objects])

    def referent_embeddings(self, referents: ReferentInputs,
                            class_embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """(R, llm_hidden_size) embeddings of referent tokens, best first.

        :raises SceneFeatureError: when this encoder reads no (or fewer) referent tokens.
        """
        readable = len(getattr(self, "referent_rank_embedding", ()))
        if referents.count > readable:
            raise SceneFeatureError(f"{referents.count} referent tokens do not fit this model "
                                    f"(it reads {readable})")
        device, dtype = self._device_dtype
        extra = (self.referent_rank_embedding[:referents.count]
                 + referents.probabilities.to(device, dtype)[:, None]
                 * self.referent_probability_embedding)
        return self._object_embeddings(referents.features, referents.relative, extra,
                                       class_embeddings)

    def _object_embeddings(self, features: torch.Tensor, relative: torch.Tensor,
                           extra: torch.Tensor, class_embeddings: torch.Tensor | None
                           ) -> torch.Tensor:
        """Object or referent tokens: lifted segment features, centre position and ``extra``
        through the projector, plus the embedding of the class name."""
        if self.object_lift is None or features.shape[1] != self.object_feature_dim:
            raise SceneFeatureError(f"object tokens of {features.shape[1]} features do not "
                                    f"fit this model (it reads {self.object_feature_dim})")
        device, dtype = self._device_dtype
        features = features.to(device, dtype)
        objects = self.projector(self.object_lift(features)
                                 + self.position_embedding(relative.to(device)) + extra)
        if class_embeddings is not None:
            # The one-hot class columns select the class name's embedding.
            one_hot = features[:, :len(class_embeddings)]
            objects = objects + one_hot @ class_embeddings.to(dtype)
        return objects

    def point_embeddings(self, points: np.ndarray, origin: np.ndarray) -> torch.Tensor:
        """(M, llm_hidden_size) embeddings of prompt points (float64 (M, 3), scene frame)."""
        device, _ = self._device_dtype
        relative = relative_positions(points, origin).to(device)
        tokens = self.position_embedding(relative) + self.point_type_embedding
        return self.projector(tokens)
