"""The vocabulary every layer shares: how a session ends, the fields that describe one, and
``Host``, what the parts below the ``Client`` need from it.

``Host`` is sessionkit's own small "API" in the OpenTelemetry sense: decorators, channels,
history loads, the wire-level hook and the session registry are written against it, and the
``Client`` (the "SDK") satisfies it structurally. Its data members are plain attributes, not
properties: the hot path reads them on every call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional, Protocol, TypeVar, Union

from typing_extensions import TypedDict

from ._budget import Budget
from ._values import to_session_id

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import Meter
    from opentelemetry.trace import Tracer

    from ._config import Config
    from ._prices import PriceTable

T = TypeVar("T")


class EndState(str, Enum):
    """How a session ended."""

    SUCCESS = "success"
    FAIL = "fail"
    INDETERMINATE = "indeterminate"


class SessionFields(TypedDict, total=False):
    """The keyword arguments that describe a session, wherever one is started."""

    thread_id: Optional[str]
    """The conversation this session belongs to (``gen_ai.conversation.id``)."""
    user_id: Optional[str]
    tags: Union[None, str, Iterable[str]]
    metadata: Optional[Mapping[str, Any]]
    session_id: Optional[str]
    """Continue the session with this id (from another request, process or replica) instead
    of starting a new one: the new turns carry the same ``session.id``."""
    budget: Optional[Budget]
    """What the session may spend (:class:`sessionkit.Budget`); default: the ``budget`` setting."""


class Host(Protocol):
    """What the parts below the client use of it. Implemented by ``Client``."""

    config: Config
    """The client's settings (frozen; replaced whole by ``configure``)."""
    tracer: Tracer
    """Where sessionkit's spans come from (a no-op tracer while tracing is off)."""
    recording: bool
    """Whether spans are recorded at all (tracing enabled and a provider in place)."""
    closed: bool
    """Whether the client was shut down."""
    prices: PriceTable
    """What LLM calls cost: the ``prices`` setting, then genai-prices."""

    def redact(self, text: str) -> str:
        """Captured content as it will be recorded."""
        ...

    def instruments(self, name: str, build: Callable[[Meter], T]) -> T:
        """The instrument(s) ``build(meter)`` makes, made once per meter and kept under ``name``."""
        ...

    def session_event(self, name: str, attributes: Mapping[str, Any]) -> None:
        """Emit a session event (``session.start`` / ``session.end``) on the logs signal, if one
        is configured."""
        ...

    def current_session(self) -> Optional[Any]:
        """The session the calling code belongs to (a ``Session``), or None."""
        ...

    def span_parent(self, context: Optional[Context] = None) -> Context:
        """The parent context for a new span: ``context`` when it holds a span, else the root of
        the session the calling code belongs to."""
        ...


SESSION_FIELDS = frozenset(SessionFields.__annotations__)


def check_fields(fields: Mapping[str, Any]) -> None:
    """TypeError, at the call, for a keyword a session does not take."""
    unknown = fields.keys() - SESSION_FIELDS
    if unknown:
        raise TypeError(
            f"sessionkit: a session takes no {', '.join(sorted(map(repr, unknown)))}; "
            f"its settings are {', '.join(sorted(SESSION_FIELDS))} (and a name)"
        )
    session_id = fields.get("session_id")
    if session_id is not None:
        to_session_id(session_id)
    budget = fields.get("budget")
    if budget is not None and not isinstance(budget, Budget):
        raise TypeError(f"sessionkit: budget= takes a sessionkit.Budget(usd=..., tokens=..., ...); got {budget!r}")
