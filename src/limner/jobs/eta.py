"""How long a model's next image takes, learnt from what its last ones took.

Providers without progress of their own (most hosted APIs answer in one piece) would leave
a progress bar stuck at "rendering". ARCHITECTURE §5: such jobs get an ETA learnt from the
model's past run times. The history is the job store's (the run times of the model's last
succeeded image jobs, read once per model and process) plus every provider call timed
since.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from limner.domain.jobs import JobKind

# Kinds whose run time is mostly the image model's: scenes also wait for a writer.
IMAGE_KINDS = (
    JobKind.IMAGE_GENERATION,
    JobKind.IMAGE_EDIT,
    JobKind.AVATAR_GENERATION,
    JobKind.AVATAR_EDIT,
)


class RunTimeHistory(Protocol):
    async def recent_run_times(
        self, model_id: str, kinds: Sequence[JobKind], limit: int
    ) -> list[float]:
        """Seconds from start to end of the model's latest succeeded jobs of these kinds,
        newest first."""
        ...


class RunTimes:
    """The median of a model's last ``keep`` run times (robust to the odd slow call)."""

    def __init__(self, history: RunTimeHistory, *, keep: int = 20) -> None:
        self.history = history
        self.keep = keep
        self._recent: dict[str, deque[float]] = {}

    async def expected_s(self, model_id: str) -> float | None:
        recent = self._recent.get(model_id)
        if recent is None:
            stored = await self.history.recent_run_times(model_id, IMAGE_KINDS, self.keep)
            recent = self._recent.setdefault(model_id, deque(maxlen=self.keep))
            recent.extendleft(stored)  # newest first -> oldest on the left
        return statistics.median(recent) if recent else None

    def record(self, model_id: str, seconds: float) -> None:
        if seconds > 0:
            self._recent.setdefault(model_id, deque(maxlen=self.keep)).append(seconds)
