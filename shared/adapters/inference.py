"""One minimal inference call on a deployment (the data plane): what warms a new
deployment and what a ``ping`` keep-alive sends."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from ..core.errors import AzureError, ErrorKind, classify

log = logging.getLogger(__name__)

__all__ = ["PingResult", "Inference", "model_format", "PING_PROMPT"]

PING_PROMPT = "ping"


def model_format(model: str) -> str:
    """``chat`` or ``completion``, from the model catalogue (unknown models: a guess by name)."""
    from ..catalogue import UnknownModelError, base_model_of, load_catalogue

    try:
        return load_catalogue().resolve(model).format
    except UnknownModelError:
        base = base_model_of(model or "")
        return "completion" if base.startswith(("babbage", "davinci")) else "chat"


@dataclass
class PingResult:
    ok: bool
    error: AzureError | None = None

    @property
    def not_ready(self) -> bool:
        return self.error is not None and self.error.kind == ErrorKind.NOT_READY

    @property
    def gone(self) -> bool:
        return self.error is not None and self.error.gone

    @property
    def reached(self) -> bool:
        """The call reached a serving deployment (answered, or refused for its content or
        by throttling): it serves, and it counts as activity."""
        return self.ok or (self.error is not None and self.error.status in (400, 429)
                           and not self.not_ready and not self.gone)


class Inference:
    def __init__(self, ctx, calls: Counter | None = None) -> None:
        self.ctx = ctx
        self.calls: Counter[str] = calls if calls is not None else Counter()

    def ping(self, name: str, model: str | None) -> PingResult:
        """``max_tokens: 1`` on chat completions, or completions for babbage/davinci models.
        Any answer that reached the deployment counts as activity for the idle rule."""
        client = self.ctx.clients.openai
        fmt = model_format(model or "")
        self.calls["inference"] += 1
        try:
            if fmt == "completion":
                client.completions.create(model=name, prompt=PING_PROMPT, max_tokens=1)
            else:
                try:
                    client.chat.completions.create(model=name, max_tokens=1,
                                                   messages=[{"role": "user", "content": PING_PROMPT}])
                except Exception as exc:  # reasoning models refuse max_tokens: ask with the newer name
                    err = classify(exc)
                    if err.status == 400 and "max_tokens" in err.message and "max_completion_tokens" in err.message:
                        self.calls["inference"] += 1
                        client.chat.completions.create(model=name, max_completion_tokens=1,
                                                       messages=[{"role": "user", "content": PING_PROMPT}])
                    else:
                        raise
        except Exception as exc:
            err = classify(exc)
            log.info("inference ping on %s failed: %s", name, err)
            return PingResult(False, err)
        return PingResult(True)
