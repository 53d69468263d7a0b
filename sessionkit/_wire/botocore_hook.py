"""The wire hook of AWS Bedrock, through botocore's event hooks (botocore does not use httpx).

Every ``bedrock-runtime`` client botocore creates gets three handlers on its own event emitter:
``before-call`` starts the span from the serialised request, ``after-call`` reads the parsed
response (and, for ConverseStream, the events as the program iterates them), and
``after-call-error`` ends it with the error. Converse, ConverseStream, InvokeModel and
InvokeModelWithResponseStream are recorded; a client created before sessionkit started is not.
"""

from __future__ import annotations

import io
import json
import logging
from types import ModuleType
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

import wrapt

from .._payloads.llm import Endpoint
from .call import LLMCall, Request, start_known_call
from .patching import unwrap, wrap

logger = logging.getLogger("sessionkit")

SERVICE = "bedrock-runtime"
OPERATIONS = {
    "Converse": "bedrock.converse",
    "ConverseStream": "bedrock.converse_stream",
    "InvokeModel": "bedrock.invoke",
    "InvokeModelWithResponseStream": "bedrock.invoke_stream",
}
_CONTEXT_KEY = "sessionkit_llm_call"
_MARKER = "_sessionkit_bedrock"


def hooked(client: Any) -> bool:
    """Whether ``client`` (a botocore client) has sessionkit's Bedrock handlers."""
    return bool(getattr(client, _MARKER, False))


_HANDLER_ID = "sessionkit-bedrock"


def _model_id(url: str) -> Optional[str]:
    """The model of ``/model/{modelId}/converse`` (an ARN or id, URL-quoted in the path)."""
    path = urlsplit(url).path
    _, slash, rest = path.partition("/model/")
    if not slash:
        return None
    model, _, _ = rest.rpartition("/")
    return unquote(model) or None


def _before_call(model: Any = None, params: Any = None, context: Any = None, **_: Any) -> None:
    try:
        api = OPERATIONS.get(getattr(model, "name", ""))
        if api is None or not isinstance(params, dict) or context is None:
            return
        url = str(params.get("url") or "")
        parts = urlsplit(url)
        endpoint = Endpoint("aws.bedrock", api, (parts.hostname or "").lower(), parts.port, _model_id(url))
        body = params.get("body")
        content = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else None
        call = start_known_call(endpoint, Request("POST", url, params.get("headers") or {}, content))
        if call is not None:
            context[_CONTEXT_KEY] = call
    except Exception:
        logger.debug("sessionkit: could not start a Bedrock span (the call goes on untraced)", exc_info=True)


def _after_call(http_response: Any = None, parsed: Any = None, context: Any = None, **_: Any) -> None:
    call: Optional[LLMCall] = context.pop(_CONTEXT_KEY, None) if isinstance(context, dict) else None
    if call is None:
        return
    try:
        status = int(getattr(http_response, "status_code", 200) or 200)
        if not isinstance(parsed, dict):
            call.got_parsed(status, None)
            return
        api = call.endpoint.api
        if api in ("bedrock.converse_stream", "bedrock.invoke_stream") and parsed.get("stream") is not None:
            call.got_event_stream(status)
            parsed["stream"] = _Events(parsed["stream"], call)
            return
        if api == "bedrock.invoke":
            parsed = _read_invoke_body(parsed, http_response)
        call.got_parsed(status, parsed)
    except Exception:
        logger.debug("sessionkit: could not read a Bedrock response (ignored)", exc_info=True)
        call.finish()


def _read_invoke_body(parsed: dict[str, Any], http_response: Any) -> dict[str, Any]:
    """InvokeModel's body is the model's own JSON, in a stream the program reads once: it is
    read here and put back as a fresh stream of the same bytes. The token counts Bedrock puts
    in the headers come along."""
    from botocore.response import StreamingBody

    stream = parsed.get("body")
    data = stream.read() if stream is not None else b""
    parsed["body"] = StreamingBody(io.BytesIO(data), len(data))
    try:
        body = json.loads(data) if data else {}
    except (ValueError, UnicodeDecodeError):
        body = {}
    headers = getattr(http_response, "headers", None) or {}
    return {
        "body": body,
        "input_tokens": headers.get("x-amzn-bedrock-input-token-count"),
        "output_tokens": headers.get("x-amzn-bedrock-output-token-count"),
    }


def _after_call_error(exception: Any = None, context: Any = None, **_: Any) -> None:
    call: Optional[LLMCall] = context.pop(_CONTEXT_KEY, None) if isinstance(context, dict) else None
    if call is not None:
        call.finish(exception if isinstance(exception, BaseException) else None)


class _Events(wrapt.ObjectProxy):
    """botocore's EventStream, each event seen by the call as the program iterates it."""

    def __init__(self, stream: Any, call: LLMCall) -> None:
        super().__init__(stream)
        self._self_call = call

    def __iter__(self) -> Any:
        call = self._self_call
        try:
            for event in self.__wrapped__:
                call.take_event(event)
                yield event
        except GeneratorExit:
            call.finish(None, False)
            raise
        except BaseException as exc:
            call.finish(exc, False)
            raise
        call.finish(None, True)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_call.finish(None, False)


def register(client: Any) -> None:
    """Put the handlers on a ``bedrock-runtime`` client's event emitter (once)."""
    events = client.meta.events
    if getattr(client, _MARKER, False):
        return
    events.register(f"before-call.{SERVICE}", _before_call, unique_id=f"{_HANDLER_ID}-before")
    events.register(f"after-call.{SERVICE}", _after_call, unique_id=f"{_HANDLER_ID}-after")
    events.register(f"after-call-error.{SERVICE}", _after_call_error, unique_id=f"{_HANDLER_ID}-error")
    setattr(client, _MARKER, True)


def _create_client(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    client = wrapped(*args, **kwargs)
    try:
        if client.meta.service_model.service_name == SERVICE:
            register(client)
    except Exception:
        logger.debug("sessionkit: could not hook a Bedrock client (its calls go untraced)", exc_info=True)
    return client


def patch(module: ModuleType) -> None:
    """Patch ``botocore.client.ClientCreator.create_client`` once: new Bedrock clients get the
    handlers."""
    wrap(module.ClientCreator, "create_client", _create_client, _MARKER)


def unpatch(module: ModuleType) -> None:
    """Restore ``create_client``. Clients that have the handlers keep them; with no client
    recording, the handlers do nothing."""
    unwrap(getattr(module, "ClientCreator", None), "create_client", _MARKER)
