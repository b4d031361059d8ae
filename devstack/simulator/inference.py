"""Inference on deployments: ``/openai/deployments/{name}/chat/completions`` and
``/completions``.

Not part of the authoring API description; bodies follow the inference API
(``chat.completion`` / ``text_completion`` objects, as the ``openai`` SDK
parses them). A call that reaches a serving deployment counts as activity (the
idle rule) and as one ``AzureOpenAIRequests`` in Azure Monitor, whatever its
status.
"""
from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .state import SimError
from .web import dataplane_account, handles_errors, read_json, sim_of

__all__ = ["routes"]

NOT_FOUND = ("The API deployment for this resource does not exist. If you created the deployment within the "
             "last 5 minutes, please wait a moment and try again.")


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _operation(kind: str):
    @handles_errors
    async def handler(request: Request) -> Response:
        sim = sim_of(request)
        name = request.path_params["deployment"]
        account = dataplane_account(request)
        body = await read_json(request)
        with sim.store.lock:
            now = sim.store.now()
            d = sim.store.find_serving(name, account)
            if d is None or d.serving_since is None or d.state == "Deleting":
                raise SimError(404, "DeploymentNotFound", NOT_FOUND)
            if now < d.serving_since + sim.config.deployment_warmup_seconds:
                raise SimError(404, "DeploymentNotReady",
                               "The deployment is not ready yet; it can take a few minutes after the deployment "
                               "succeeded. Please try again shortly.")
            status = 200
            try:
                result = _answer(kind, d, body, now)
            except SimError as exc:
                status = exc.status
                raise
            finally:
                sim.store.record_inference(d, kind, status)
        return JSONResponse(result)

    handler.__name__ = f"{kind}_handler"
    return handler


def _answer(kind: str, d, body: Any, now: float) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SimError(400, "BadRequest", "The request body must be a JSON object.")
    if body.get("stream"):
        raise SimError(400, "BadRequest", "The simulator does not stream responses; send stream=false.")
    model = d.model.get("name")
    if kind == "chat" and d.kind != "chat":
        raise SimError(400, "OperationNotSupported",
                       f"The chatCompletion operation does not work with the specified model, {model}. Please "
                       "choose different model and try again.")
    if kind == "completions" and d.kind != "completion":
        raise SimError(400, "OperationNotSupported",
                       f"The completion operation does not work with the specified model, {model}. Please choose "
                       "different model and try again.")
    created = int(now)
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise SimError(400, "BadRequest", "'messages' is a required property and must be a non-empty array.")
        prompt = " ".join(_content_text(m.get("content")) for m in messages if isinstance(m, dict))
        last_user = next((_content_text(m.get("content")) for m in reversed(messages)
                          if isinstance(m, dict) and m.get("role") == "user"), "")
        reply = f"[simulated reply from deployment '{d.name}' ({model})] {last_user[:200]}".rstrip()
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": created,
                "model": model, "system_fingerprint": None,
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": reply, "refusal": None}}],
                "usage": {"prompt_tokens": _tokens(prompt), "completion_tokens": _tokens(reply),
                          "total_tokens": _tokens(prompt) + _tokens(reply)}}
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = " ".join(str(p) for p in prompt)
    if not isinstance(prompt, str):
        raise SimError(400, "BadRequest", "'prompt' is a required property.")
    reply = f" [simulated completion from deployment '{d.name}' ({model})]"
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": 0, "text": reply, "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": _tokens(prompt), "completion_tokens": _tokens(reply),
                      "total_tokens": _tokens(prompt) + _tokens(reply)}}


routes = [
    Route("/openai/deployments/{deployment}/chat/completions", _operation("chat"), methods=["POST"]),
    Route("/openai/deployments/{deployment}/completions", _operation("completions"), methods=["POST"]),
]
