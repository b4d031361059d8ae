"""Azure, as the life cycles see it: one object per surface, each raising
:class:`~shared.core.errors.AzureError` and counting its calls in one shared counter
(``openai``, ``arm``, ``metrics``, ``inference``). :class:`AzurePorts` bundles them; unit
tests hand handlers a fake with the same attributes."""
from __future__ import annotations

from collections import Counter
from functools import cached_property


class AzurePorts:
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.calls: Counter[str] = Counter()

    @cached_property
    def jobs(self):
        from .openai_jobs import OpenAIJobs

        return OpenAIJobs(self.ctx, self.calls)

    @cached_property
    def files(self):
        from .files import OpenAIFiles

        return OpenAIFiles(self.ctx, self.calls)

    @cached_property
    def arm(self):
        from .arm import Arm

        return Arm(self.ctx, self.calls)

    @cached_property
    def metrics(self):
        from .metrics import Metrics

        return Metrics(self.ctx, self.calls)

    @cached_property
    def inference(self):
        from .inference import Inference

        return Inference(self.ctx, self.calls)

    @cached_property
    def blobs(self):
        from .blobs import Blobs

        return Blobs(self.ctx)
