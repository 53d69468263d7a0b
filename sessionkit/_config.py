"""Configuration: explicit arguments > ``SESSIONKIT_*`` env > standard ``OTEL_*`` env > defaults.

``Config`` is a frozen dataclass; :meth:`Config.resolve` validates what was given against the
schema in ``_schema()`` with pydantic-core, pydantic's validation engine (the same rules and
messages as a pydantic model, without importing all of pydantic at ``init``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Optional, Union
from urllib.parse import unquote, urlsplit

from opentelemetry.sdk.trace.export import SpanExporter
from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as cs
from typing_extensions import TypedDict

from ._budget import Budget
from ._errors import ConfigError
from ._findings import FINDING_KINDS, THRESHOLDS, Detector
from ._propagation import BAGGAGE_FIELDS

ExporterName = Literal["otlp", "otlp-grpc", "file", "console", "memory", "none"]
EXPORTER_NAMES: tuple[str, ...] = ("otlp", "otlp-grpc", "file", "console", "memory", "none")
PROTOCOLS: tuple[str, ...] = ("http/protobuf", "grpc")
LogsExporterName = Literal["otlp", "file", "console", "memory", "none"]
LOGS_EXPORTER_NAMES: tuple[str, ...] = ("otlp", "file", "console", "memory", "none")
PRICE_KEYS: tuple[str, ...] = ("input", "output", "cache_read", "cache_write")


def default_file_dir() -> Path:
    """Where the ``file`` exporter writes when no folder is configured.

    ``$XDG_DATA_HOME/sessionkit/traces``, which is ``~/.local/share/sessionkit/traces`` on most
    machines.
    """
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "sessionkit" / "traces"


class Options(TypedDict, total=False):
    """Keyword arguments accepted by :func:`sessionkit.init` and :class:`sessionkit.Client`: the
    fields of :class:`Config`, by name (tests/test_config.py keeps the two equal)."""

    service_name: str
    project_name: str
    exporter: Union[ExporterName, SpanExporter, None]
    endpoint: str
    headers: Mapping[str, str]
    protocol: Literal["http/protobuf", "grpc"]
    export_timeout: float
    resource_attributes: Mapping[str, Any]
    file_dir: Union[str, Path]
    auto_start_session: bool
    auto_session_name: str
    strict: bool
    enabled: bool
    capture_content: bool
    capture_turn_content: bool
    conversation_idle_timeout: float
    max_content_length: int
    message_capture: Literal["all", "new"]
    set_global: Union[bool, Literal["auto"]]
    tracer_provider: Any
    max_queue_size: int
    max_export_batch_size: int
    export_interval: float
    shutdown_timeout: float
    export_metrics: bool
    meter_provider: Any
    instrument_llm_calls: bool
    llm_base_urls: Union[list[str], Mapping[str, str]]
    redact: Callable[[str], str]
    redact_defaults: bool
    handle_sigterm: bool
    channel_limits: Mapping[str, int]
    channel_ttl: float
    channel_attempt_rate: int
    channel_attempt_window: float
    trace_per: Literal["turn", "session"]
    prices: Mapping[str, Mapping[str, float]]
    logs_exporter: Optional[LogsExporterName]
    integrations: Union[str, list[str], tuple[str, ...]]
    findings: Union[str, list[str], tuple[str, ...]]
    finding_thresholds: Mapping[str, float]
    context_windows: Mapping[str, int]
    detectors: Union[list[type[Detector]], tuple[type[Detector], ...]]
    budget: Optional[Budget]
    propagate_to: Union[str, list[str], tuple[str, ...]]
    propagate_baggage: Union[str, list[str], tuple[str, ...]]
    continue_incoming: bool
    sample_rate: float
    store_max_mb: Optional[float]
    store_max_age_days: Optional[float]
    display_spans: Union[bool, Literal["auto"]]
    display_max_sessions: int
    display_max_spans: int


INTEGRATION_NAMES = ("openai_agents", "langchain", "mcp", "litellm", "google_adk", "a2a")
"""The libraries ``sessionkit.integrations`` follows, each when it is installed and imported."""


# -- validation (each setting's schema names one of these) -------------------------------------
def _check_exporter(value: Any) -> Any:
    if value is None or isinstance(value, SpanExporter):
        return value
    if isinstance(value, str) and value.strip().lower() in EXPORTER_NAMES:
        return value.strip().lower()
    raise ValueError(f"accepted: one of {', '.join(repr(n) for n in EXPORTER_NAMES)}, or a SpanExporter instance")


def _check_provider(value: Any) -> Any:
    from opentelemetry.sdk.trace import TracerProvider

    if value is not None and not isinstance(value, TracerProvider):
        raise ValueError("accepted: an opentelemetry.sdk.trace.TracerProvider (the SDK's, not the API's)")
    return value


def _check_redact(value: Any) -> Any:
    if value is not None and not callable(value):
        raise ValueError("accepted: a function taking the captured text and returning it redacted")
    return value


def _check_limits(value: dict[str, int]) -> dict[str, int]:
    for platform, limit in value.items():
        if limit < 1:
            raise ValueError(
                f"accepted: a positive limit per platform, e.g. {{'discord': 500}}; got {platform!r}: {limit}"
            )
    return value


def _check_prices(value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    for model, price in value.items():
        unknown = set(price) - set(PRICE_KEYS)
        if unknown:
            raise ValueError(
                f"accepted: prices per million tokens under {', '.join(PRICE_KEYS)}; "
                f"{model!r} has {', '.join(sorted(unknown))}"
            )
        if "input" not in price or "output" not in price:
            raise ValueError(
                "accepted: at least 'input' and 'output' per model, e.g. "
                f"{{{model!r}: {{'input': 0.5, 'output': 1.5}}}}"
            )
        bad = [k for k, v in price.items() if not (0 <= v < float("inf"))]  # (NaN fails too)
        if bad:
            raise ValueError(f"accepted: finite prices of 0 or more; {model!r} has {bad[0]}={price[bad[0]]!r}")
    return value


def _check_integrations(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return INTEGRATION_NAMES
        if value.strip().lower() in ("none", ""):
            return ()
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"accepted: 'auto', 'none', or a list of names from {', '.join(INTEGRATION_NAMES)}")
    unknown = sorted(set(value) - set(INTEGRATION_NAMES))
    if unknown:
        raise ValueError(f"accepted: names from {', '.join(INTEGRATION_NAMES)}; unknown: {', '.join(unknown)}")
    return tuple(name for name in INTEGRATION_NAMES if name in value)


def _check_findings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return FINDING_KINDS
        if value.strip().lower() in ("none", ""):
            return ()
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"accepted: 'auto', 'none', or a list of kinds from {', '.join(FINDING_KINDS)}")
    unknown = sorted(set(value) - set(FINDING_KINDS))
    if unknown:
        raise ValueError(f"accepted: kinds from {', '.join(FINDING_KINDS)}; unknown: {', '.join(unknown)}")
    return tuple(kind for kind in FINDING_KINDS if kind in value)


def _pairs(value: Any, what: str) -> Any:
    """``"a=1,b=2"`` (from the environment) as a dict; anything else unchanged."""
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for part in value.split(","):
        if part.strip():
            name, sep, number = part.partition("=")
            if not sep:
                raise ValueError(f"write {what} as name=value pairs separated by commas, like loop=5,spike_factor=4")
            pairs[name.strip()] = number.strip()
    return pairs


def _check_thresholds(value: Any) -> dict[str, float]:
    value = _pairs(value, "the thresholds")
    if not isinstance(value, Mapping):
        raise ValueError(f"accepted: a mapping of {', '.join(THRESHOLDS)} to numbers")
    checked: dict[str, float] = {}
    for name, number in value.items():
        if name not in THRESHOLDS:
            raise ValueError(f"accepted: thresholds named {', '.join(THRESHOLDS)}; unknown: {name!r}")
        try:
            number = float(number)
        except (TypeError, ValueError):
            raise ValueError(f"the threshold {name} takes a number; got {number!r}") from None
        if not (0 < number < float("inf")) or (name == "context_window_share" and number > 1):
            raise ValueError(f"the threshold {name} takes a finite number above 0 (a share up to 1); got {number!r}")
        checked[name] = number
    return checked


def _check_windows(value: Any) -> dict[str, int]:
    value = _pairs(value, "the context windows")
    if not isinstance(value, Mapping):
        raise ValueError('accepted: a mapping of model names to context windows in tokens, like {"my-model": 128000}')
    checked: dict[str, int] = {}
    for model, tokens in value.items():
        try:
            count = int(tokens)
        except (TypeError, ValueError):
            raise ValueError(
                f"the context window of {model!r} takes a whole number of tokens; got {tokens!r}"
            ) from None
        if count <= 0 or isinstance(tokens, bool):
            raise ValueError(f"the context window of {model!r} takes a number of tokens above 0; got {tokens!r}")
        checked[str(model)] = count
    return checked


def _check_detectors(value: Any) -> tuple[type[Detector], ...]:
    items = list(value) if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(d, type) and issubclass(d, Detector) and d.kind for d in items):
        raise ValueError(
            "accepted: a list of classes derived from sessionkit.Detector, each with a kind "
            "(class MyDetector(sessionkit.Detector): kind = 'my_kind')"
        )
    return tuple(items)


def _check_budget(value: Any) -> Optional[Budget]:
    if value is None or isinstance(value, Budget):
        return value
    if isinstance(value, str):
        return Budget.parse(value) if value.strip() else None
    raise ValueError("accepted: sessionkit.Budget(usd=..., tokens=..., ...), None, or 'usd=0.5,tokens=200000'")


def _names(value: Any, accepted: str) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"accepted: {accepted}, as a list or a comma-separated string")
    return [v.strip() for v in value if v.strip()]


def _check_targets(value: Any) -> tuple[str, ...]:
    entries = _names(value, "URL prefixes, host patterns or 'mcp'")
    if [e.lower() for e in entries] == ["none"]:
        return ()
    for entry in entries:
        if "://" in entry:
            parts = urlsplit(entry)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"accepted: URL prefixes with http:// or https:// and a host, such as 'https://tools.internal/'; "
                    f"got {entry!r}"
                )
        elif "/" in entry or " " in entry:
            raise ValueError(
                f"accepted: a host pattern ('tools.internal', '*.svc.cluster.local', '127.0.0.1:8081') or a URL "
                f"prefix with its scheme; got {entry!r}"
            )
    return tuple(dict.fromkeys(entries))


def _check_baggage(value: Any) -> tuple[str, ...]:
    from_names = BAGGAGE_FIELDS
    names = [n.lower() for n in _names(value, "names from session, thread, user")]
    if names == ["none"]:
        return ()
    unknown = sorted(set(names) - set(from_names))
    if unknown:
        raise ValueError(f"accepted: names from {', '.join(from_names)} (or 'none'); unknown: {', '.join(unknown)}")
    return tuple(n for n in from_names if n in names)


def _check_endpoint(value: Optional[str]) -> Optional[str]:
    if value is None:
        return value
    try:
        parts = urlsplit(value.strip())
        port = parts.port  # a bad port raises here
    except ValueError as exc:
        raise ValueError(f"accepted: a URL such as 'http://127.0.0.1:4318' ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "accepted: a URL with a scheme (http:// or https://) and a host, such as 'http://127.0.0.1:4318'"
        )
    del port
    return value.strip()


def _check_meter_provider(value: Any) -> Any:
    if value is not None and not callable(getattr(value, "get_meter", None)):
        raise ValueError("accepted: an OpenTelemetry MeterProvider (an object with get_meter()), or None")
    return value


def _to_path(value: Any) -> Path:
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    raise ValueError("accepted: a folder path (str or pathlib.Path)")


_STR_DICT = cs.dict_schema(cs.str_schema(), cs.str_schema())


def setting(
    schema: cs.CoreSchema,
    default: Any = None,
    *,
    factory: Optional[Callable[[], Any]] = None,
    env: tuple[str, ...] = (),
    repr: bool = True,
) -> Any:
    """One setting of :class:`Config`, declared once: its default (or ``factory``), the schema
    that validates a given value (pydantic-core), and the environment variables that set it
    (first found wins). Its type and docs are the field's annotation and docstring;
    ``Options`` repeats the names for type checkers (a test keeps the two equal)."""
    metadata = {"schema": schema, "env": env}
    if factory is not None:
        return dataclasses.field(default_factory=factory, repr=repr, metadata=metadata)
    return dataclasses.field(default=default, repr=repr, metadata=metadata)


@dataclass(frozen=True)
class Config:
    """The effective settings of a :class:`~sessionkit.Client`. Build it with :meth:`resolve`,
    which validates every value (pydantic-core) and names the fix for a bad one."""

    service_name: str = setting(cs.str_schema(), "sessionkit", env=("SESSIONKIT_SERVICE_NAME", "OTEL_SERVICE_NAME"))
    """``service.name`` on the resource."""
    project_name: Optional[str] = setting(
        cs.nullable_schema(cs.str_schema()), None, env=("SESSIONKIT_PROJECT_NAME", "PHOENIX_PROJECT_NAME")
    )
    """``openinference.project.name`` (the Phoenix project); defaults to ``service_name``."""
    exporter: Union[ExporterName, SpanExporter, None] = setting(
        cs.no_info_plain_validator_function(_check_exporter), "file", env=("SESSIONKIT_EXPORTER",)
    )
    """Where spans go: a name, or any OpenTelemetry ``SpanExporter`` instance. None (the default
    with ``tracer_provider``): sessionkit stamps and counts, the attached provider exports."""
    endpoint: Optional[str] = setting(
        cs.no_info_after_validator_function(_check_endpoint, cs.nullable_schema(cs.str_schema())),
        None,
        env=("SESSIONKIT_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    """OTLP endpoint. For http/protobuf a base URL (``/v1/traces`` is added) or the full traces URL."""
    headers: dict[str, str] = setting(
        _STR_DICT,
        factory=dict,
        env=("SESSIONKIT_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
        repr=False,
    )
    """Headers sent with every OTLP export (for example an API key). Never logged."""
    protocol: Literal["http/protobuf", "grpc"] = setting(
        cs.literal_schema(list(PROTOCOLS)),
        "http/protobuf",
        env=("SESSIONKIT_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
    )
    export_timeout: float = setting(
        cs.float_schema(gt=0, allow_inf_nan=False),
        10.0,
        env=("SESSIONKIT_EXPORT_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
    )
    """Seconds one export request may take, retries included."""
    resource_attributes: dict[str, Any] = setting(cs.dict_schema(cs.str_schema(), cs.any_schema()), factory=dict)
    file_dir: Path = setting(
        cs.no_info_plain_validator_function(_to_path), factory=default_file_dir, env=("SESSIONKIT_FILE_DIR",)
    )
    """Folder of the local store (the ``file`` exporter's SQLite database, ``sessionkit.db``),
    read by ``sessionkit sessions`` and :func:`~sessionkit.open_store`."""
    store_max_mb: Optional[float] = setting(
        cs.nullable_schema(cs.float_schema(gt=0, allow_inf_nan=False)), 1024.0, env=("SESSIONKIT_STORE_MAX_MB",)
    )
    """The local store's size limit in MB: past it, the oldest sessions are removed whole. None: no limit."""
    store_max_age_days: Optional[float] = setting(
        cs.nullable_schema(cs.float_schema(gt=0, allow_inf_nan=False)), 30.0, env=("SESSIONKIT_STORE_MAX_AGE_DAYS",)
    )
    """Sessions older than this many days are removed from the local store. None: kept until the size limit."""
    auto_start_session: bool = setting(cs.bool_schema(), False, env=("SESSIONKIT_AUTO_START_SESSION",))
    """Start a session at ``init`` that collects everything started outside any session."""
    auto_session_name: str = setting(cs.str_schema(), "default")
    strict: bool = setting(cs.bool_schema(), False, env=("SESSIONKIT_STRICT",))
    """Raise :class:`~sessionkit.SessionStateError` on session misuse instead of logging it."""
    enabled: bool = setting(cs.bool_schema(), True, env=("SESSIONKIT_ENABLED",))
    capture_content: bool = setting(
        cs.bool_schema(),
        False,
        env=("SESSIONKIT_CAPTURE_CONTENT", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
    )
    """Record LLM messages (prompts and completions), tool arguments and results, and a
    framework's inputs and outputs. Off by default."""
    capture_turn_content: bool = setting(cs.bool_schema(), True, env=("SESSIONKIT_CAPTURE_TURN_CONTENT",))
    """Record each turn's input and output: what the program itself gave sessionkit
    (``session.turn(message)``, ``turn.set_output(answer)``, ``@turn(input=...)``) and a
    framework run's user message and final answer. On by default; redaction applies."""
    conversation_idle_timeout: float = setting(
        cs.float_schema(gt=0, allow_inf_nan=False), 900.0, env=("SESSIONKIT_CONVERSATION_IDLE_TIMEOUT",)
    )
    """Seconds a conversation (``Client.conversation``, a framework run's ``group_id`` /
    ``thread_id`` outside a session) stays open with no run in it; then its session ends."""
    max_content_length: int = setting(cs.int_schema(ge=16), 4096, env=("SESSIONKIT_MAX_CONTENT_LENGTH",))
    """Characters of captured content per attribute at most; longer content is shortened by its
    structure (the newest messages whole, strings cut), so it stays valid JSON."""
    message_capture: Literal["all", "new"] = setting(
        cs.literal_schema(["all", "new"]), "all", env=("SESSIONKIT_MESSAGE_CAPTURE",)
    )
    """Which of an LLM request's messages are captured: ``all`` (the newest that fit in
    ``max_content_length``), or ``new``: only those no earlier call of the conversation
    captured, so exported bytes grow with the conversation, not with its square."""
    redact: Optional[Callable[[str], str]] = setting(cs.no_info_plain_validator_function(_check_redact), None)
    """Runs on captured content before it goes on a span: ``redact(text) -> text``."""
    redact_defaults: bool = setting(cs.bool_schema(), True, env=("SESSIONKIT_REDACT_DEFAULTS",))
    """Also mask API keys, bearer tokens, JWTs and email addresses in captured content."""
    handle_sigterm: bool = setting(cs.bool_schema(), True, env=("SESSIONKIT_HANDLE_SIGTERM",))
    """On SIGTERM (when no other handler is set), end open sessions and flush before exiting."""
    set_global: Union[bool, Literal["auto"]] = setting(
        cs.union_schema([cs.literal_schema(["auto"]), cs.bool_schema()]), "auto", env=("SESSIONKIT_SET_GLOBAL",)
    )
    """Other libraries' spans (taken from the global OpenTelemetry provider) in the session.
    ``"auto"``: when no global provider is set, set sessionkit's, which hands each span to the
    client the call belongs to (re-running ``init`` switches it, never warns, never duplicates);
    when the program set its own SDK provider, add a processor to it that stamps the spans of
    sessions. ``True``: the same, and a warning when neither can be done. ``False``: neither."""
    tracer_provider: Optional[Any] = setting(cs.no_info_plain_validator_function(_check_provider), None)
    """Attach to this SDK ``TracerProvider`` instead of creating one."""
    max_queue_size: int = setting(
        cs.int_schema(ge=1), 4096, env=("SESSIONKIT_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE")
    )
    """Spans held for export at most; beyond it spans are dropped and counted."""
    max_export_batch_size: int = setting(
        cs.int_schema(ge=1), 512, env=("SESSIONKIT_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
    )
    export_interval: float = setting(
        cs.float_schema(gt=0, allow_inf_nan=False), 1.0, env=("SESSIONKIT_EXPORT_INTERVAL",)
    )
    """Seconds between background exports."""
    shutdown_timeout: float = setting(
        cs.float_schema(ge=0, allow_inf_nan=False), 5.0, env=("SESSIONKIT_SHUTDOWN_TIMEOUT",)
    )
    """Seconds that shutdown and the exit hook may spend exporting what is left."""
    export_metrics: bool = setting(cs.bool_schema(), False, env=("SESSIONKIT_EXPORT_METRICS",))
    """Also export metrics over OTLP to the same endpoint (off: not every backend takes metrics)."""
    meter_provider: Optional[Any] = setting(cs.no_info_plain_validator_function(_check_meter_provider), None)
    """Record metrics on this ``MeterProvider`` instead of the client's own."""
    instrument_llm_calls: bool = setting(cs.bool_schema(), True, env=("SESSIONKIT_INSTRUMENT_LLM_CALLS",))
    """Record LLM calls made through httpx / httpx2 (the openai and anthropic SDKs and others)."""
    llm_base_urls: Union[list[str], dict[str, str]] = setting(
        cs.union_schema([cs.list_schema(cs.str_schema()), _STR_DICT]), factory=list, env=("SESSIONKIT_LLM_BASE_URLS",)
    )
    """Not needed to record LLM calls: they are recognised on any host (an LLM SDK's headers, or
    a body with a model and messages, on an LLM API path). A mapping of base URL to provider
    name names the provider (``gen_ai.provider.name``) of a URL; ``"none"`` excludes one; a
    plain list records every LLM-API-path POST under those URLs."""
    channel_limits: dict[str, int] = setting(
        cs.no_info_after_validator_function(_check_limits, cs.dict_schema(cs.str_schema(), cs.int_schema())),
        factory=dict,
    )
    """Channel limit per platform, e.g. ``{"discord": 500}``: a warning at 80% and at the limit."""
    channel_ttl: Optional[float] = setting(
        cs.nullable_schema(cs.float_schema(gt=0, allow_inf_nan=False)), None, env=("SESSIONKIT_CHANNEL_TTL",)
    )
    """Seconds a channel may stay open before it counts as leaked (None: only at session end)."""
    channel_attempt_rate: int = setting(cs.int_schema(ge=1), 10)
    """Channel creation attempts per platform within ``channel_attempt_window`` before a retry-storm warning."""
    channel_attempt_window: float = setting(cs.float_schema(gt=0, allow_inf_nan=False), 10.0)
    trace_per: Literal["turn", "session"] = setting(
        cs.literal_schema(["turn", "session"]), "turn", env=("SESSIONKIT_TRACE_PER",)
    )
    """``"turn"``: each turn of a session is a trace of its own, grouped by ``session.id`` (what
    Phoenix, Langfuse and other session views read). ``"session"``: one trace per session, the
    turns as children of its root (one tree in Jaeger)."""
    integrations: tuple[str, ...] = setting(
        cs.no_info_plain_validator_function(_check_integrations), INTEGRATION_NAMES, env=("SESSIONKIT_INTEGRATIONS",)
    )
    """The agent frameworks followed when they are imported (``sessionkit.integrations``):
    ``"auto"`` (all of ``openai_agents``, ``langchain``, ``mcp``), a list of those names, or
    ``"none"`` / ``[]``."""
    findings: tuple[str, ...] = setting(
        cs.no_info_plain_validator_function(_check_findings), FINDING_KINDS, env=("SESSIONKIT_FINDINGS",)
    )
    """The kinds of finding looked for (docs/insights.md): ``"auto"`` (all), a list of kinds
    (``["loop", "budget"]``), or ``"none"``."""
    finding_thresholds: dict[str, float] = setting(
        cs.no_info_plain_validator_function(_check_thresholds), factory=dict, env=("SESSIONKIT_FINDING_THRESHOLDS",)
    )
    """Thresholds of the detectors, over their defaults: ``loop`` (3 same calls), ``retry_storm``
    (3 failed calls in a minute), ``context_window_share`` (0.8), ``growth_turns`` (5),
    ``spike_factor`` (3x the median turn), ``slow_turn_seconds`` (1), ``error_streak`` (3)."""
    context_windows: dict[str, int] = setting(cs.no_info_plain_validator_function(_check_windows), factory=dict)
    """Context windows in tokens by model name, over the built-in table, for ``context_growth``."""
    detectors: tuple[type[Detector], ...] = setting(cs.no_info_plain_validator_function(_check_detectors), ())
    """Your own detectors (classes derived from :class:`sessionkit.Detector`), run in every
    session beside the built-in ones."""
    budget: Optional[Budget] = setting(
        cs.no_info_plain_validator_function(_check_budget), None, env=("SESSIONKIT_BUDGET",)
    )
    """The budget of every session that is started without one (:class:`sessionkit.Budget`;
    from the environment: ``usd=0.5,tokens=200000,on_exceed=raise``). None: no limit."""
    prices: dict[str, dict[str, float]] = setting(
        cs.no_info_after_validator_function(
            _check_prices,
            cs.dict_schema(cs.str_schema(min_length=1), cs.dict_schema(cs.str_schema(), cs.float_schema())),
        ),
        factory=dict,
    )
    """Prices of your own models in USD per million tokens, by model name:
    ``{"my-model": {"input": 0.5, "output": 1.5, "cache_read": 0.05}}``. They take precedence
    over the genai-prices table; a model in neither has no cost."""
    propagate_to: tuple[str, ...] = setting(
        cs.no_info_plain_validator_function(_check_targets), (), env=("SESSIONKIT_PROPAGATE_TO",)
    )
    """Where a request made inside a session may carry it (W3C ``traceparent`` and a ``baggage``
    header with the session's ids): URL prefixes (``"https://tools.internal/api"``), host
    patterns (``"tools.internal"``, ``"*.svc.cluster.local"``, ``"127.0.0.1:8081"``), and
    ``"mcp"`` (the MCP servers the program's MCP client calls). Default: nowhere. An LLM API
    receives it only from an entry that names its host without a wildcard."""
    propagate_baggage: tuple[str, ...] = setting(
        cs.no_info_plain_validator_function(_check_baggage),
        ("session", "thread", "user"),
        env=("SESSIONKIT_PROPAGATE_BAGGAGE",),
    )
    """Which ids the ``baggage`` header carries to allowed targets: ``"session"`` (with the
    caller's turn), ``"thread"``, ``"user"``; ``"none"`` sends the trace context alone."""
    continue_incoming: bool = setting(cs.bool_schema(), True, env=("SESSIONKIT_CONTINUE_INCOMING",))
    """Whether incoming requests (``SessionMiddleware``, ``continue_session``) continue the
    caller's session from their headers. Set False on a public edge: a client must not write
    into another user's session."""
    sample_rate: float = setting(cs.float_schema(ge=0, le=1, allow_inf_nan=False), 1.0, env=("SESSIONKIT_SAMPLE_RATE",))
    """The share of sessions kept (0 to 1), decided from the session id alone, so that every
    process and service keeps or drops the same sessions whole. Kept spans carry the rate
    (``sessionkit.sample_rate``); a dropped session's spans are not recorded nor exported."""
    display_spans: Union[bool, Literal["auto"]] = setting(
        cs.union_schema([cs.literal_schema(["auto"]), cs.bool_schema()]), "auto", env=("SESSIONKIT_DISPLAY_SPANS",)
    )
    """Keep each session's ended spans in memory for its display (a waterfall in a notebook):
    ``"auto"``: on in an IPython kernel (Jupyter), off elsewhere. Bounded by the two below."""
    display_max_sessions: int = setting(cs.int_schema(ge=1, le=100_000), 20)
    """Sessions whose spans are kept for display (the most recent ones)."""
    display_max_spans: int = setting(cs.int_schema(ge=1, le=1_000_000), 2000)
    """Spans kept per session for display (the newest); a session past it says how many went."""
    logs_exporter: Optional[LogsExporterName] = setting(
        cs.nullable_schema(cs.literal_schema(list(LOGS_EXPORTER_NAMES))), None, env=("SESSIONKIT_LOGS_EXPORTER",)
    )
    """Where the ``session.start`` / ``session.end`` events go: ``"otlp"`` (the traces endpoint's
    ``/v1/logs``), ``"file"`` (the local store's events; with the ``file`` exporter too, derived from each
    session's record), ``"console"``, ``"memory"``,
    ``"none"``. None: ``OTEL_LOGS_EXPORTER`` if set, else ``"file"`` with the file exporter and
    ``"none"`` otherwise."""

    @property
    def effective_project_name(self) -> str:
        return self.project_name or self.service_name

    @property
    def tracing_enabled(self) -> bool:
        return self.enabled and self.exporter != "none"

    @property
    def effective_logs_exporter(self) -> str:
        """Where session events go, ``logs_exporter`` resolved (see there)."""
        if self.logs_exporter is not None:
            return self.logs_exporter if self.enabled else "none"
        return "file" if self.exporter == "file" and self.enabled else "none"

    @property
    def keeps_spans_for_display(self) -> bool:
        """``display_spans`` resolved: ``"auto"`` is on inside an IPython kernel."""
        if self.display_spans == "auto":
            return _in_ipython_kernel()
        return bool(self.display_spans)

    @property
    def emits_session_events(self) -> bool:
        """Whether sessions emit their events on the logs signal. Not with the local store as
        both exporters: it writes a session's events from its record span, in the same
        transaction, at no cost to the agent."""
        kind = self.effective_logs_exporter
        return kind != "none" and not (kind == "file" and self.exporter == "file")

    def logs_url(self) -> str:
        """The OTLP/HTTP logs endpoint: the traces endpoint's base with ``/v1/logs``."""
        base = self.endpoint or "http://127.0.0.1:4318"
        base = base.rstrip("/")
        return base[: -len("/v1/traces")] + "/v1/logs" if base.endswith("/v1/traces") else base + "/v1/logs"

    def traces_url(self) -> str:
        """The endpoint the OTLP exporter sends to, with the signal path for http/protobuf."""
        if self.protocol == "grpc" or self.exporter == "otlp-grpc":
            return self.endpoint or "http://127.0.0.1:4317"
        base = self.endpoint or "http://127.0.0.1:4318"
        return base if base.rstrip("/").endswith("/v1/traces") else base.rstrip("/") + "/v1/traces"

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every setting's name."""
        return tuple(f.name for f in fields(cls))

    def comparable(self) -> tuple[Any, ...]:
        """What decides whether re-running ``init`` with this config changes anything."""
        skip = ("exporter", "tracer_provider", "meter_provider", "redact")
        data = tuple((name, repr(getattr(self, name))) for name in self.names() if name not in skip)
        exporter = self.exporter if isinstance(self.exporter, str) else id(self.exporter)
        providers = (id(self.tracer_provider), id(self.meter_provider), id(self.redact))
        return (data, exporter, providers)

    def masked(self) -> dict[str, Any]:
        """The settings as a dict with header values masked, safe to print."""
        data = {name: getattr(self, name) for name in self.names() if name not in ("tracer_provider", "meter_provider")}
        data["redact"] = None if self.redact is None else getattr(self.redact, "__name__", "hook")
        data["headers"] = {k: "***" for k in self.headers}
        data["exporter"] = self.exporter if isinstance(self.exporter, str) else type(self.exporter).__name__
        data["file_dir"] = str(self.file_dir)
        return data

    @classmethod
    def resolve(cls, **options: Any) -> Config:
        """Merge arguments with the environment and validate, raising :class:`ConfigError`."""
        accepted = cls.names()
        unknown = set(options) - set(accepted)
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(
                f"sessionkit: unknown setting {name!r}. Accepted settings: {', '.join(sorted(accepted))}."
            )
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, value in options.items():
            if value is not None:
                values[name] = value
                sources[name] = "argument"
        for name, (raw, source) in _from_environment().items():
            if name not in values:
                values[name] = raw
                sources[name] = source
        if "exporter" not in values:
            values["exporter"] = None if values.get("tracer_provider") is not None else _default_exporter(values)
        try:
            return cls(**_validator().validate_python(values))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "?"
            got = values.get(field, err.get("input"))
            where = sources.get(field, "argument")
            reason = str(err["msg"]).removeprefix("Value error, ")
            raise ConfigError(
                f"sessionkit: invalid {field}={got!r} (from {where}): {reason}.", field=field, value=got
            ) from None


def _default_exporter(values: Mapping[str, Any]) -> str:
    if values.get("endpoint"):
        return "otlp-grpc" if values.get("protocol") == "grpc" else "otlp"
    return "file"


@lru_cache(maxsize=1)
def _validator() -> SchemaValidator:
    """The schema of every setting that can be given (defaults come from the dataclass)."""
    return SchemaValidator(
        cs.typed_dict_schema(
            {f.name: cs.typed_dict_field(f.metadata["schema"], required=False) for f in fields(Config)},
            extra_behavior="forbid",
        )
    )


ENV_NAMES: dict[str, tuple[str, ...]] = {f.name: f.metadata["env"] for f in fields(Config) if f.metadata["env"]}
"""Each setting with its environment variables, first found wins."""


def _from_environment() -> dict[str, tuple[Any, str]]:
    found: dict[str, tuple[Any, str]] = {}
    for field, names in ENV_NAMES.items():
        for name in names:
            raw = os.environ.get(name)
            if raw is None or raw.strip() == "":
                continue
            value: Any = raw.strip()
            if field == "headers":
                value = parse_headers(value)
            elif field == "llm_base_urls":
                value = [u.strip() for u in value.split(",") if u.strip()]
            elif field in ("store_max_mb", "store_max_age_days") and value.lower() in ("none", "off"):
                value = None
            elif field == "capture_content" and name.startswith("OTEL_"):
                value = value.lower() in ("true", "1", "yes", "on")
            found[field] = (value, f"environment variable {name}")
            break
    for field, name in (("export_interval", "OTEL_BSP_SCHEDULE_DELAY"), ("export_timeout", "OTEL_BSP_EXPORT_TIMEOUT")):
        millis = os.environ.get(name, "").strip()
        if field not in found and millis:  # milliseconds, as the SDK reads them
            try:
                found[field] = (float(millis) / 1000.0, f"environment variable {name}")
            except ValueError:
                found[field] = (millis, f"environment variable {name}")
    traces_exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if "exporter" not in found and traces_exporter:
        found["exporter"] = (_otel_exporter(traces_exporter), "environment variable OTEL_TRACES_EXPORTER")
    logs_exporter = os.environ.get("OTEL_LOGS_EXPORTER", "").strip().lower()
    if "logs_exporter" not in found and logs_exporter:
        found["logs_exporter"] = (logs_exporter.split(",")[0].strip(), "environment variable OTEL_LOGS_EXPORTER")
    sampler = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    sampler_arg = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if "sample_rate" not in found and sampler_arg and sampler in ("traceidratio", "parentbased_traceidratio"):
        found["sample_rate"] = (sampler_arg, "environment variable OTEL_TRACES_SAMPLER_ARG")
    if "enabled" not in found and os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        found["enabled"] = (False, "environment variable OTEL_SDK_DISABLED")
    return found


def _otel_exporter(value: str) -> str:
    """``OTEL_TRACES_EXPORTER`` as a sessionkit exporter name (the first one listed is used)."""
    first = value.split(",")[0].strip()
    if first == "otlp":
        protocol = (
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
        )
        return "otlp-grpc" if protocol.strip().lower() == "grpc" else "otlp"
    return first  # none, console; anything else is refused by the exporter check, naming the choices


def parse_headers(raw: str) -> dict[str, str]:
    """Parse the W3C-baggage-like ``key=value,key2=value2`` form of ``OTEL_EXPORTER_OTLP_HEADERS``."""
    headers: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            headers[unquote(key.strip()).lower()] = unquote(value.strip())
    return headers


def _in_ipython_kernel() -> bool:
    """Whether this process is an IPython kernel (Jupyter, VS Code notebooks): never imports IPython."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    try:
        shell = get() if callable(get) else None
    except Exception:
        return False
    return shell is not None and hasattr(shell, "kernel")
