"""One LLM call seen on the wire, whichever HTTP client sent it: recognising it, its span,
reading its request, and its response as it passes (a JSON body, an SSE or NDJSON stream).

The hooks of each HTTP client (``httpx_hook``, ``aiohttp_hook``, ``botocore_hook``) hand their
requests to ``start_call`` and the bytes of the response to the ``LLMCall`` it returns.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Mapping
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import semconv
from .._client_set import ClientSet
from .._errors import BudgetExceeded
from .._findings import request_fingerprint
from .._payloads.body import fit_json, fit_messages, redacted_json
from .._payloads.family import PayloadFamily, family_of
from .._payloads.llm import (
    Endpoint,
    LLMResult,
    cost_attributes,
    is_llm_span,
    usage_attributes,
)
from .._prices import warm as warm_prices
from .._spans import attributes_of, set_clean_attributes
from .._types import Host
from .._values import to_text
from .recognise import Request, configured_base_urls, endpoint_of, is_llm_path, is_llm_request, request_body
from .request import read_request

__all__ = [
    "LLMCall",
    "WIRE_CALL_KEY",
    "registry",
    "start_call",
    "start_known_call",
]

logger = logging.getLogger("sessionkit")

_MAX_BODY = 8 << 20  # a non-streamed-event body is kept for parsing up to this size
WIRE_CALL_KEY = otel_context.create_key("sessionkit.wire_call")
"""Set in the context while an LLM call is sent: a second hook below the first (an httpx
transport that sends through aiohttp) does not record the same call again."""


# -- which client records a call ------------------------------------------------------------------
class _Registry(ClientSet[Host]):
    """The clients that want LLM calls recorded (see ``ClientSet`` for which one a call goes to)."""

    def __init__(self) -> None:
        super().__init__()
        self.held_by_instrumentor = False
        """Set while ``LLMHttpInstrumentor`` is on: the last client leaving must not unpatch."""


registry = _Registry()


# -- one call -----------------------------------------------------------------------------------------
class LLMCall:
    """An LLM call's span, from the request to the end of its response."""

    __slots__ = (
        "client",
        "endpoint",
        "payloads",
        "_started",
        "_done",
        "_lock",
        "result",
        "status_code",
        "streamed",
        "ttfc",
        "_reader",
        "_sse",
        "_body",
        "_decoder",
        "_skim",
        "capture",
        "limit",
        "span",
        "context",
        "model",
    )

    def __init__(self, client: Host, endpoint: Endpoint, request: Any, session: Any = None) -> None:
        self.client = client
        self.endpoint = endpoint
        self.payloads = _payloads(endpoint)
        self._started = time.monotonic()
        self._done = False
        self._lock = threading.Lock()
        self.result = LLMResult()
        self.status_code: Optional[int] = None
        self.streamed = False
        self.ttfc: Optional[float] = None
        self._reader: Any = None
        self._sse: Any = None
        self._body: Optional[bytearray] = None
        self._decoder: Any = None
        self._skim: Any = None
        config = client.config
        self.capture = config.capture_content
        self.limit = config.max_content_length

        parsed, history = read_request(
            self.payloads, endpoint.api, request, self.capture, config.message_capture, session
        )
        model = parsed.model or endpoint.model or "unknown"
        self.model = model
        warm_prices()  # (once per process: the price table loads while this request waits)
        attrs: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: endpoint.operation,
            semconv.GEN_AI_PROVIDER_NAME: endpoint.provider,
            semconv.GEN_AI_REQUEST_MODEL: model,
            semconv.GEN_AI_REQUEST_STREAM: parsed.stream,
            semconv.SERVER_ADDRESS: endpoint.host,
            semconv.OPENINFERENCE_SPAN_KIND: "LLM",
            semconv.LLM_MODEL_NAME: model,
            semconv.LLM_PROVIDER: endpoint.provider,
        }
        if endpoint.port is not None:
            attrs[semconv.SERVER_PORT] = endpoint.port
        raw = request_body(request)
        if raw:
            attrs[semconv.LLM_REQUEST_FINGERPRINT] = request_fingerprint(raw)
        attrs.update(parsed.params)
        retries = _retry_count(request)
        attrs[semconv.LLM_ATTEMPT] = retries + 1
        if retries:
            attrs[semconv.HTTP_RESEND_COUNT] = retries
        if self.capture:
            redact = client.redact
            if history is not None:
                texts, omitted = history
                fitted, left_out = fit_messages(texts, self.limit)
                messages = redacted_json(redact, fitted, self.limit)
                attrs[semconv.GEN_AI_INPUT_MESSAGES] = messages
                attrs[semconv.INPUT_VALUE] = messages
                attrs[semconv.INPUT_MIME_TYPE] = "application/json"
                if omitted + left_out:
                    attrs[semconv.LLM_INPUT_MESSAGES_OMITTED] = omitted + left_out
            if parsed.system_instructions:
                system = fit_json(parsed.system_instructions, self.limit)
                attrs[semconv.GEN_AI_SYSTEM_INSTRUCTIONS] = redacted_json(redact, system, self.limit)
        current_context = otel_context.get_current()  # looked up once
        parent = trace.get_current_span(current_context)
        if parent.is_recording() and is_llm_span(attributes_of(parent)):
            # Another tracer (the SDK's own, or an @llm function) already has a span for this
            # call: this span, seen on the wire, is the one the session counts.
            parent.set_attribute(semconv.LLM_COUNTED_IN_CHILD, True)
        self.span = client.tracer.start_span(
            f"{endpoint.operation} {model}", context=client.span_parent(current_context), kind=SpanKind.CLIENT
        )
        set_clean_attributes(self.span, attrs, fresh=True)
        self.context = otel_context.set_value(
            WIRE_CALL_KEY, True, trace.set_span_in_context(self.span, current_context)
        )

    # -- the response --------------------------------------------------------------------------
    def got_body(self, status_code: int, content: bytes) -> None:
        """A response read whole: parse it and end the span."""
        try:
            self.status_code = int(status_code)
            self._parse_json(content)
        except Exception:
            logger.debug("sessionkit: could not read an LLM response (ignored)", exc_info=True)
        self.finish()

    def got_headers(self, status_code: int, headers: Mapping[str, str], decoded: bool = False) -> bool:
        """The headers of a response whose body will pass through ``observe``; ``decoded``: the
        chunks will arrive decompressed. False (and the span ended) when it cannot be read."""
        try:
            self.status_code = int(status_code)
            content_type = headers.get("content-type") or ""
            encoding = "" if decoded else (headers.get("content-encoding") or "").lower()
            if encoding in ("gzip", "deflate"):
                self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)
            elif encoding not in ("", "identity"):
                self._decoder = False  # br, zstd: passed through, not parsed
            framing: Any = None
            if "text/event-stream" in content_type:
                from .._payloads.sse import SSEParser

                framing = SSEParser
            elif "ndjson" in content_type or "jsonl" in content_type:
                from .._payloads.sse import NDJSONParser

                framing = NDJSONParser
            if framing is not None:
                self.streamed = True
                self._sse = framing()
                self._reader = self.payloads.StreamReader(self.endpoint.api, keep_text=self.capture)
                self._skim = self._reader.skim
            else:
                self._body = bytearray()
            return True
        except Exception:
            logger.debug("sessionkit: could not read an LLM response (ignored)", exc_info=True)
            self.finish()
            return False

    def got_parsed(self, status_code: int, body: Any) -> None:
        """A response its client decoded already (botocore): read it and end the span."""
        try:
            self.status_code = int(status_code)
            if body is not None:
                self.payloads.parse_response(self.endpoint.api, body, self.result)
        except Exception:
            logger.debug("sessionkit: could not read an LLM response (ignored)", exc_info=True)
        self.finish()

    def got_event_stream(self, status_code: int) -> None:
        """The response is a stream of events its client decodes (botocore's event stream):
        each comes through ``take_event``."""
        self.status_code = int(status_code)
        self.streamed = True
        self._reader = self.payloads.StreamReader(self.endpoint.api, keep_text=self.capture)

    def take_event(self, event: Any) -> None:
        """One decoded stream event. Never raises."""
        try:
            if self.ttfc is None:
                self.ttfc = time.monotonic() - self._started
            self._reader.take(event)
        except Exception:
            logger.debug("sessionkit: could not read an LLM stream event (ignored)", exc_info=True)

    def observe(self, chunk: bytes) -> None:
        """A raw chunk passed to the caller. Never raises."""
        try:
            decoder = self._decoder
            if decoder is False:
                return
            data = decoder.decompress(chunk) if decoder is not None else chunk
            sse = self._sse
            if sse is not None:
                if sse.idle and self._skim(data):
                    return  # a text-only chunk, counted (ttfc was set by the first event)
                events = sse.feed(data)
                if events:
                    if self.ttfc is None:
                        self.ttfc = time.monotonic() - self._started
                    event = self._reader.event
                    for name, payload in events:
                        event(name, payload)
            elif self._body is not None and len(self._body) + len(data) <= _MAX_BODY:
                self._body.extend(data)
        except Exception:
            logger.debug("sessionkit: could not parse an LLM stream chunk (ignored)", exc_info=True)

    def _parse_json(self, content: bytes) -> None:
        try:
            body = json.loads(content) if content else None
        except (ValueError, UnicodeDecodeError):
            return
        if isinstance(body, list):  # a stream sent as one JSON array (Gemini without alt=sse)
            self.streamed = True
        if body is not None:
            self.payloads.parse_response(self.endpoint.api, body, self.result)

    # -- the end ------------------------------------------------------------------------------------
    def finish(self, exc: Optional[BaseException] = None, completed: Optional[bool] = None) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        span = self.span
        try:
            if self._sse is not None:
                for name, payload in self._sse.flush():
                    self._reader.event(name, payload)
            if self._reader is not None:
                self.result = self._reader.result
            elif self._body is not None:
                self._parse_json(bytes(self._body))
            self._record(exc, completed)
        except Exception:
            logger.debug("sessionkit: could not record an LLM call (ignored)", exc_info=True)
        span.end()

    def _record(self, exc: Optional[BaseException], completed: Optional[bool]) -> None:
        span, result = self.span, self.result
        attrs: dict[str, Any] = {}
        if result.response_model:
            attrs[semconv.GEN_AI_RESPONSE_MODEL] = result.response_model
        if result.response_id:
            attrs[semconv.GEN_AI_RESPONSE_ID] = result.response_id
        if result.finish_reasons:
            attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(result.finish_reasons)
        attrs.update(usage_attributes(result.input_tokens, result.output_tokens))
        if (
            result.input_tokens is None
            and result.output_tokens is None
            and exc is None
            and (self.status_code is None or self.status_code < 400)
            and not result.error_type
        ):
            attrs[semconv.LLM_USAGE_MISSING] = True  # unknown, not zero: the summary says so
        cost = self.client.prices.cost(
            result.response_model or self.model,
            self.endpoint.provider,
            result.input_tokens,
            result.output_tokens,
            result.cache_read_tokens,
            result.cache_creation_tokens,
        )
        if cost is not None:
            attrs.update(cost_attributes(cost))
        if result.cache_read_tokens is not None:
            attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = result.cache_read_tokens
        if result.cache_creation_tokens is not None:
            attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = result.cache_creation_tokens
        if result.reasoning_tokens is not None:
            attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = result.reasoning_tokens
        if self.status_code is not None:
            attrs[semconv.HTTP_RESPONSE_STATUS_CODE] = self.status_code
        if self.streamed:
            attrs[semconv.STREAM_COMPLETED] = bool(completed) or (result.ended and exc is None)
            attrs[semconv.STREAM_EVENTS] = result.events
            if self.ttfc is not None:
                attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.ttfc
        if self.capture and (result.output_text or result.tool_calls):
            redact = self.client.redact
            output = fit_json(result.output_messages(), self.limit)
            attrs[semconv.GEN_AI_OUTPUT_MESSAGES] = redacted_json(redact, output, self.limit)
            attrs[semconv.OUTPUT_VALUE] = redact(to_text("".join(result.output_text), self.limit))
        error_type: Optional[str] = None
        if exc is not None:
            error_type = type(exc).__qualname__
            span.record_exception(exc)
        elif self.status_code is not None and self.status_code >= 400:
            error_type = str(self.status_code)
        elif result.error_type:
            error_type = result.error_type
        if error_type is not None:
            attrs[semconv.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, error_type))
        set_clean_attributes(span, attrs)  # the GenAI metrics are derived from these (see _genai_metrics.py)


def _retry_count(request: Any) -> int:
    try:
        return max(int(request.headers.get("x-stainless-retry-count", "0")), 0)
    except (TypeError, ValueError):
        return 0


def _payloads(endpoint: Endpoint) -> PayloadFamily:
    """The payload module of an endpoint's API family (imported on first use, then kept)."""
    family = endpoint.family
    found = _payload_modules.get(family)
    if found is None:
        found = _payload_modules[family] = family_of(family)
    return found


_payload_modules: dict[str, PayloadFamily] = {}


def start_call(request: Any) -> Optional[LLMCall]:
    """The LLM call a request makes, started, or None: not a POST to an LLM API, no client
    records, instrumentation suppressed, or already seen by a wire hook further up (an httpx
    transport that sends through aiohttp). Never raises."""
    try:
        if getattr(request, "method", None) != "POST":
            return None
        url = str(request.url)
        if not is_llm_path(url):
            return None  # not an LLM API path: every other request stops here
        found = _recording_client()
        if found is None:
            return None
        client, session = found
        base_urls = configured_base_urls(client.config)
        # A well-known host or a configured URL decides by itself; only an unknown host needs
        # the request looked at (its headers, or its body).
        endpoint = endpoint_of(url, base_urls, None)
        if endpoint is None:
            hint = is_llm_request(request.headers, request_body(request))
            if hint is not None:
                endpoint = endpoint_of(url, base_urls, hint)
        if endpoint is None:
            return None
        if session is not None:
            session.refuse_llm_request()  # (a budget with on_exceed="raise": BudgetExceeded, not sent)
        return LLMCall(client, endpoint, request, session)
    except BudgetExceeded:
        raise  # (the one exception meant for the agent's code: the user asked for it)
    except Exception:
        logger.debug("sessionkit: could not start an LLM span (the call goes on untraced)", exc_info=True)
        return None


def start_known_call(endpoint: Endpoint, request: Request) -> Optional[LLMCall]:
    """The call to an endpoint a hook recognised by itself (botocore knows the operation),
    started, or None when nothing records. Never raises."""
    try:
        found = _recording_client()
        if found is not None and found[1] is not None:
            found[1].refuse_llm_request()
        return LLMCall(found[0], endpoint, request, found[1]) if found is not None else None
    except BudgetExceeded:
        raise
    except Exception:
        logger.debug("sessionkit: could not start an LLM span (the call goes on untraced)", exc_info=True)
        return None


def _recording_client() -> Optional[tuple[Host, Any]]:
    """The client that records a call made here, with the calling code's session (asked once:
    the sampling check and the request's history key both use it), or None."""
    if not is_instrumentation_enabled() or otel_context.get_value(WIRE_CALL_KEY) is not None:
        return None
    client = registry.pick()
    if client is None or not client.recording:
        return None
    session = client.current_session()
    if session is not None and not session.sampled:
        return None  # a session sampling dropped: its calls cost nothing more
    return client, session
