"""METEOR 1.5 through pycocoevalcap's Java scorer (there is no faithful native port).

METEOR's score depends on its stemmer, WordNet synonyms and paraphrase tables, all inside
``meteor-1.5.jar``; reimplementing them would not give the published numbers. So this module
runs the jar that pycocoevalcap ships, and says clearly when no Java runtime is available.
"""
from __future__ import annotations

import shutil
from collections.abc import Sequence

from scene_llm_ros.errors import SceneLlmError
from scene_llm_ros.metrics.ngram import CorpusScore, check_scoring_input


class MeteorUnavailableError(SceneLlmError):
    """METEOR cannot run: no Java runtime on PATH or no pycocoevalcap (the message says which)."""


def meteor_unavailable_reason() -> str | None:
    """Why METEOR cannot run here, or None when it can."""
    if shutil.which("java") is None:
        return "METEOR needs a Java runtime ('java' is not on PATH); install e.g. openjdk-17-jre"
    try:
        import pycocoevalcap.meteor.meteor  # noqa: F401
    except ImportError as error:
        return f"METEOR needs pycocoevalcap, which cannot be imported: {error}"
    return None


class MeteorScorer:
    """One METEOR Java process, reused across calls (loading its tables takes seconds).

    Use as a context manager, or call :meth:`close`, to stop the process.

    :raises MeteorUnavailableError: when Java or pycocoevalcap is missing.
    """

    def __init__(self) -> None:
        reason = meteor_unavailable_reason()
        if reason is not None:
            raise MeteorUnavailableError(reason)
        from pycocoevalcap.meteor.meteor import Meteor

        self._scorer: Meteor | None = Meteor()

    def score(self, predictions: Sequence[str], references: Sequence[Sequence[str]]
              ) -> CorpusScore:
        """METEOR of tokenised predictions against tokenised references.

        :return: the corpus score METEOR reports (pooled statistics, not the mean of the
            items) and the per-item scores.
        :raises ValueError: on a length mismatch or an item without references, or after
            :meth:`close`.
        """
        check_scoring_input(predictions, references)
        if self._scorer is None:
            raise ValueError("this MeteorScorer is closed")
        value, per_item = self._scorer.compute_score(
            {i: list(refs) for i, refs in enumerate(references)},
            {i: [prediction] for i, prediction in enumerate(predictions)})
        return CorpusScore(float(value), [float(score) for score in per_item])

    def close(self) -> None:
        """Stop the Java process (pycocoevalcap's wrapper does so when it is released)."""
        self._scorer = None

    def __enter__(self) -> MeteorScorer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def meteor(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> CorpusScore:
    """METEOR of tokenised predictions against tokenised references, in a fresh Java process.

    :return: see :meth:`MeteorScorer.score`.
    :raises MeteorUnavailableError: when Java or pycocoevalcap is missing.
    :raises ValueError: on a length mismatch or an item without references.
    """
    check_scoring_input(predictions, references)
    with MeteorScorer() as scorer:
        return scorer.score(predictions, references)
