"""The training loop of one stage: data, model, DDP, optimizer, logging and checkpoints.

Single process::

    scene-llm train --config training/configs/stage1_alignment.yaml --out runs/stage1

Two processes on the CPU (gloo), or one per GPU (nccl)::

    torchrun --nproc_per_node=2 -m training --config training/configs/stage1_alignment.yaml

Every rank builds the same model from the same seed and data; DDP broadcasts rank 0's weights
at start and averages gradients. Rank 0 alone logs, writes TensorBoard and checkpoints.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from scene_llm_ros.grounding.segment_features import SegmentFeatures
from scene_llm_ros.grounding.snapshot_grounder import SnapshotGrounder
from scene_llm_ros.model import LossInput, SceneInputs, SceneLlm
from scene_llm_ros.model.configuration_scene_llm import SCENE_TOKEN_SETTINGS
from training.checkpoints import (
    FINAL_DIR,
    TENSORBOARD_DIR,
    latest_checkpoint,
    prune_checkpoints,
    step_dir,
    write_training_json,
)
from training.config import TrainConfig
from training.dataset import InstructionDataset, SplitScenes, build_samples, corpus_texts
from training.distributed import DistContext, init_distributed, shutdown_distributed
from training.encode import EncodedSample, encode_sample
from training.errors import ResumeError
from training.model_init import build_model
from training.sampling import ShardCursor
from training.scene_cache import FrameSelection, SceneTokenCache
from training.schedule import lr_at
from training.stages import apply_stage
from training.state import load_training_state, save_training_state
from training.step_stats import StepStats, example_vector

logger = logging.getLogger(__name__)

RANK_DIGESTS_JSON = "rank_digests.json"


@dataclass
class TrainResult:
    """What a run did.

    :ivar losses: mean total loss over all ranks of every step this process ran.
    :ivar seconds_per_step: mean wall time of those steps (data encoding included).
    :ivar rank_digests: per rank, a digest of the trained weights at the end (all equal when
        DDP kept the replicas in sync).
    """

    out_dir: Path
    final_dir: Path
    start_step: int
    end_step: int
    losses: list[float] = field(default_factory=list)
    seconds_per_step: float = 0.0
    examples_per_second: float = 0.0
    rank_digests: list[str] = field(default_factory=list)


class BatchLoss(nn.Module):
    """The module DDP wraps: its forward is :meth:`SceneLlm.compute_batch_loss` of a batch.

    DDP hooks the forward pass, so the loss must run inside a module's ``forward``; outputs
    are plain tensors so DDP can trace which parameters were used (a caption does not touch
    the grounding head).
    """

    def __init__(self, model: SceneLlm) -> None:
        super().__init__()
        self.model = model

    def forward(self, samples: list[EncodedSample], grounding_weight: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the mean loss to back-propagate, detached (B, 9) :func:`example_vector` rows)."""
        losses = self.model.compute_batch_loss(
            [LossInput(s.scene, s.example, targets=s.targets, prompt_points=s.prompt_points,
                       referents=s.referents) for s in samples], grounding_weight=grounding_weight)
        total = torch.stack([loss.total for loss in losses]).mean()
        return total, torch.stack([example_vector(loss) for loss in losses])


def weights_digest(named: list[tuple[str, torch.Tensor]]) -> str:
    """SHA-256 over the names and exact bytes of tensors (for cross-rank comparison)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(named, key=lambda item: item[0]):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class Trainer:
    """One stage's run. Build it on every rank, then call :meth:`run`.

    :param config: the stage.
    :param resume: continue from the newest complete checkpoint in ``config.run.out_dir``.
    :param stop_after: end after this many total steps, keeping the schedule of
        ``optim.max_steps`` (time-sliced jobs; resume continues).
    :raises ResumeError: when ``resume`` is set and there is nothing to resume.
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False,
                 stop_after: int | None = None, dist: DistContext | None = None) -> None:
        self.config = config
        self.out_dir = Path(config.run.out_dir)
        self.dist = dist or init_distributed()
        self.stop_after = stop_after
        self.resume_from = latest_checkpoint(self.out_dir) if resume else None
        if resume and self.resume_from is None:
            raise ResumeError(f"--resume: no complete checkpoint under {self.out_dir}")
        torch.manual_seed(config.seed)
        self._setup_data()
        self._setup_model()
        self._setup_scenes()
        self._setup_optimizer()

    # -- setup -------------------------------------------------------------------------
    def _setup_data(self) -> None:
        data = self.config.data
        self.scenes = SplitScenes.discover(data.root, data.split)
        self.samples, counts = build_samples(data, self.scenes, seed=self.config.seed)
        self.dataset = InstructionDataset(self.samples)
        if self.dist.is_main:
            logger.info("%d samples from %s: %s", len(self.samples), data.split, counts)

    def _setup_model(self) -> None:
        self.model = build_model(self.config, corpus_texts(self.samples),
                                 checkpoint=self.resume_from, device=self.dist.device)
        # Checkpoints tell the fusion nodes which scene tokens this model reads.
        self.model.config.scene_tokens = {name: getattr(self.config.fusion, name)
                                          for name in SCENE_TOKEN_SETTINGS}
        scene_ids = sorted({s.scene_id for s in self.samples})
        labels = sorted({o.label for sid in scene_ids for o in self.scenes.objects(sid).values()})
        added = self.model.add_labels(labels)
        if added and self.dist.is_main:
            logger.info("added %d dataset labels to the grounding head", added)
        # LoRA init draws from the global RNG: seed it the same on every rank.
        torch.manual_seed(self.config.seed)
        self.trainable = apply_stage(self.model, self.config.stage)
        self.model.train()
        # Dropout differs per rank (like nanoGPT's seed offset); a resume restores it exactly.
        torch.manual_seed(self.config.seed + 1 + self.dist.rank)

    def _setup_scenes(self) -> None:
        data = self.config.data
        cache = SceneTokenCache(data.cache_path, encoder=self.model.patch_encoder,
                                fusion=self.config.fusion,
                                frames=FrameSelection(data.every_nth_frame, data.max_frames))
        scene_ids = sorted({s.scene_id for s in self.samples})
        # Each rank fuses its share first, so two ranks never fuse the same scene.
        for scene_id in scene_ids[self.dist.rank::self.dist.world_size]:
            cache.get(self.scenes.scene_dirs[scene_id])
        self.dist.barrier()
        # With object or referent tokens this segments every scene's semantic map (0.1-0.2 s
        # a room).
        self.scene_inputs: dict[str, SceneInputs] = {}
        self.segments: dict[str, SegmentFeatures | None] = {}
        for sid in tqdm(scene_ids, desc="scene tokens", unit="scene",
                        disable=not self.dist.is_main):
            grounder = SnapshotGrounder(cache.get(self.scenes.scene_dirs[sid]))
            self.scene_inputs[sid] = self.model.scene_inputs(grounder.snapshot, grounder)
            self.segments[sid] = self._listener_segments(grounder)

    def _listener_segments(self, grounder: SnapshotGrounder) -> SegmentFeatures | None:
        """What the segment listener reads of a scene, for referent tokens; None without."""
        listener = self.model.segment_listener
        if not self.model.config.referent_tokens or listener is None:
            return None
        return grounder.listener_segments(listener.config.class_names,
                                          listener.config.max_segments)

    def _setup_optimizer(self) -> None:
        optim = self.config.optim
        # No weight decay on biases, norms and vectors (the usual AdamW practice); the
        # grounding head may take a larger learning rate (``lr_scale``, applied every step).
        head = optim.head_lr_multiplier
        groups = []
        for decayed in (True, False):
            for in_head in (False, True):
                named = [(n, p) for n, p in self.trainable if (p.ndim >= 2) == decayed
                         and n.startswith("grounding_head.") == in_head]
                if named:
                    groups.append({"names": named,
                                   "weight_decay": optim.weight_decay if decayed else 0.0,
                                   "lr_scale": head if in_head else 1.0})
        self.param_names = [n for g in groups for n, _ in g["names"]]
        self.optimizer = torch.optim.AdamW(
            [{"params": [p for _, p in g["names"]], "weight_decay": g["weight_decay"],
              "lr_scale": g["lr_scale"]} for g in groups], lr=optim.lr, betas=optim.betas)
        self.cursor = ShardCursor(self.dataset, rank=self.dist.rank,
                                  world_size=self.dist.world_size, seed=self.config.seed)
        self.step = 0
        if self.resume_from is not None:
            state = load_training_state(self.resume_from, optimizer=self.optimizer,
                                        param_names=self.param_names)
            self.step = state.step
            self.cursor.load_state(state.cursor)
            if state.world_size == self.dist.world_size:
                torch.set_rng_state(state.rng_states[self.dist.rank])
            else:
                logger.warning("resuming %d-process state with %d processes: data order and "
                               "dropout differ from an uninterrupted run", state.world_size,
                               self.dist.world_size)
            if self.dist.is_main:
                logger.info("resumed from %s at step %d", self.resume_from, self.step)

    # -- loop --------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train to ``max_steps`` (or ``stop_after``), checkpointing on the way."""
        optim, run = self.config.optim, self.config.run
        end = min(optim.max_steps, self.stop_after or optim.max_steps)
        result = TrainResult(self.out_dir, self.out_dir / FINAL_DIR, self.step, end)
        module: nn.Module = BatchLoss(self.model)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            module = DistributedDataParallel(module, find_unused_parameters=True)
        writer = self._writer()
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.config.to_yaml(self.out_dir / "config.yaml")
        bar = tqdm(total=end, initial=self.step, desc=self.config.stage.name, unit="step",
                   disable=not self.dist.is_main, dynamic_ncols=True)
        times, examples = [], 0
        while self.step < end:
            start = time.perf_counter()
            stats = self._train_step(module)
            elapsed = time.perf_counter() - start
            times.append(elapsed)
            examples += optim.examples_per_step * self.dist.world_size
            result.losses.append(stats.total)
            self.step += 1
            if self.dist.is_main and (self.step % run.log_every == 0 or self.step == end):
                self._log(writer, bar, stats, elapsed)
            bar.update(1)
            if run.checkpoint_every and self.step % run.checkpoint_every == 0 and self.step < end:
                self._checkpoint(step_dir(self.out_dir, self.step))
                if self.dist.is_main:
                    prune_checkpoints(self.out_dir, run.keep_checkpoints)
        bar.close()
        if end < optim.max_steps:
            # Stopped early on purpose: a step checkpoint, so `final/` always means finished.
            result.final_dir = step_dir(self.out_dir, self.step)
        self._checkpoint(result.final_dir)
        result.rank_digests = self._rank_digests()
        if writer is not None:
            writer.close()
        self.model.eval()
        self.model.clear_prefix_cache()
        if times:
            result.seconds_per_step = sum(times) / len(times)
            result.examples_per_second = examples / sum(times)
        return result

    def _train_step(self, module: nn.Module) -> StepStats:
        """One optimizer step; returns its statistics over all ranks."""
        optim = self.config.optim
        lr = lr_at(self.step, optim)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        start = time.perf_counter()
        batch = [self.samples[i] for i in self.cursor.take(optim.examples_per_step)]
        encoded = [encode_sample(self.model, s, self.scene_inputs[s.scene_id],
                                 self.scenes.objects(s.scene_id), self.segments[s.scene_id])
                   for s in batch]
        # One backbone call per micro-batch; DDP all-reduces gradients on the last one only.
        size = optim.micro_batch_size or len(encoded)
        chunks = [encoded[i:i + size] for i in range(0, len(encoded), size)]
        vectors = []
        for k, chunk in enumerate(chunks):
            last = k == len(chunks) - 1
            sync = (module.no_sync() if self.dist.enabled and not last
                    else contextlib.nullcontext())
            with sync:
                total, rows = module(chunk, self.config.stage.grounding_weight)
                (total * len(chunk) / len(encoded)).backward()
            vectors.extend(rows)
        if optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for _, p in self.trainable], optim.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        local = StepStats.local_vector(vectors, sum(e.num_tokens for e in encoded),
                                       time.perf_counter() - start)
        return StepStats.from_reduced(self.dist.all_reduce_sum(local), self.dist.world_size)

    # -- outputs -----------------------------------------------------------------------
    def _writer(self):
        if not self.dist.is_main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a crashed run logged after its last checkpoint.
        return SummaryWriter(str(self.out_dir / TENSORBOARD_DIR),
                             purge_step=self.step if self.step else None)

    def _log(self, writer, bar: tqdm, stats: StepStats, elapsed: float) -> None:
        examples_per_s = self.config.optim.examples_per_step * self.dist.world_size / elapsed
        lr = self.optimizer.param_groups[0]["lr"]
        scalars = {"loss/total": stats.total, "loss/language": stats.language, "lr": lr,
                   "throughput/examples_per_s": examples_per_s,
                   "throughput/tokens_per_s": stats.tokens_per_s, "time/step_s": elapsed}
        # Grounding parts are means over the grounded examples only, logged when present.
        for part, value in (stats.grounding or {}).items():
            scalars["loss/grounding" if part == "total" else f"grounding/{part}"] = value
        for tag, value in scalars.items():
            writer.add_scalar(tag, value, self.step)
        bar.set_postfix(loss=f"{stats.total:.3f}", lr=f"{lr:.2e}", ex_s=f"{examples_per_s:.1f}",
                        tok_s=f"{stats.tokens_per_s:.0f}")

    def _checkpoint(self, directory: Path) -> None:
        """Rank 0 writes model, facts and resumable state; every rank sends its RNG state."""
        rng_states = self.dist.all_gather_tensor(torch.get_rng_state())
        if self.dist.is_main:
            self.model.save_pretrained(directory)
            data = self.config.data
            write_training_json(directory, {
                "stage": self.config.stage.name, "step": self.step,
                "fusion": self.config.fusion.to_dict(),
                "frames": {"every_nth": data.every_nth_frame, "max_frames": data.max_frames},
                "data": {"root": str(data.root), "split": data.split,
                         "sources": data.sources},
                "world_size": self.dist.world_size, "config": self.config.to_dict()})
            save_training_state(directory, optimizer=self.optimizer,
                                param_names=self.param_names, step=self.step,
                                cursor=self.cursor.state(), rng_states=rng_states,
                                extra={"stage": self.config.stage.name})
            logger.info("checkpoint at step %d: %s", self.step, directory)
        self.dist.barrier()

    def _rank_digests(self) -> list[str]:
        """Every rank's digest of the trained weights; rank 0 records them in the run."""
        local = weights_digest([(n, p) for n, p in self.trainable])
        encoded = torch.tensor(list(bytes.fromhex(local)), dtype=torch.uint8)
        digests = [bytes(t.tolist()).hex() for t in self.dist.all_gather_tensor(encoded)]
        if self.dist.is_main:
            (self.out_dir / RANK_DIGESTS_JSON).write_text(
                json.dumps({"world_size": self.dist.world_size, "digests": digests}, indent=1)
                + "\n", encoding="utf-8")
            if len(set(digests)) != 1:
                logger.error("the ranks ended with different weights: %s", digests)
        return digests


def train(config: TrainConfig, *, resume: bool = False,
          stop_after: int | None = None) -> TrainResult:
    """Run one stage in this process (joining the torchrun group when launched by torchrun)."""
    dist = init_distributed()
    if not dist.is_main:
        # Rank 0 alone reports; the others only warn.
        logging.getLogger().setLevel(logging.WARNING)
    try:
        return Trainer(config, resume=resume, stop_after=stop_after, dist=dist).run()
    finally:
        shutdown_distributed()
