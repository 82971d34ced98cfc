"""Training curves as a PNG, read back from the runs' TensorBoard event files."""
from __future__ import annotations

import logging
from pathlib import Path

from training.checkpoints import TENSORBOARD_DIR

logger = logging.getLogger(__name__)

#: Scalars plotted, one panel each, when a run logged them.
CURVE_TAGS = ("loss/total", "loss/language", "loss/grounding", "lr")


def find_log_dir(path: str | Path) -> Path | None:
    """The TensorBoard folder of a run given the run, its ``tensorboard/`` or a checkpoint."""
    path = Path(path)
    for candidate in (path, path / TENSORBOARD_DIR, path.parent / TENSORBOARD_DIR,
                      path.parent.parent / TENSORBOARD_DIR):
        if candidate.is_dir() and any(candidate.glob("events.out.tfevents.*")):
            return candidate
    return None


def read_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Tag -> [(step, value)] of every scalar in a TensorBoard folder, by step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: sorted((event.step, float(event.value))
                        for event in accumulator.Scalars(tag))
            for tag in accumulator.Tags().get("scalars", [])}


def plot_training_curves(runs: dict[str, str | Path], out_png: str | Path) -> Path | None:
    """Plot :data:`CURVE_TAGS` of several runs (e.g. the three stages) into one PNG.

    :param runs: label -> run directory, ``tensorboard/`` folder or checkpoint.
    :return: the PNG path, or None when no run had TensorBoard scalars.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    series = {}
    for label, path in runs.items():
        log_dir = find_log_dir(path)
        if log_dir is None:
            logger.warning("no TensorBoard events for %s under %s", label, path)
            continue
        series[label] = read_scalars(log_dir)
    tags = [tag for tag in CURVE_TAGS if any(tag in scalars for scalars in series.values())]
    if not tags:
        return None
    figure, axes = plt.subplots(len(tags), 1, figsize=(7, 2.4 * len(tags)), squeeze=False)
    for axis, tag in zip(axes[:, 0], tags, strict=True):
        for label, scalars in series.items():
            if tag in scalars:
                steps, values = zip(*scalars[tag], strict=True)
                axis.plot(steps, values, label=label)
        axis.set_ylabel(tag)
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    axes[-1, 0].set_xlabel("optimizer step")
    figure.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
    return out_png
