"""Chat channels an agent proxy opens per conversation: lifecycle, leaks, limits, retry storms.

A bot proxy that opens a channel (a Discord channel, a Slack thread, a websocket room) per
conversation leaks channels when creation is retried after network trouble or a reply never
finishes. Platforms cap channels (500 per Discord server), so leaks end in every request
failing. Here each channel is a span from open to close; creation attempts are spans too;
the client keeps a registry of open channels across its sessions.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Optional, Protocol, cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from . import semconv
from ._errors import ChannelError, internal_errors
from ._findings import Finding, Severity
from ._types import Host
from ._values import to_attributes, to_text

if TYPE_CHECKING:
    from ._models import OpenChannel
    from ._session import Session  # type-only: the public type of ``Channel.session``

__all__ = [
    "Channel",
    "ChannelAttempt",
    "ChannelError",
    "ChannelOwner",
    "ChannelRegistry",
    "SessionChannels",
]

logger = logging.getLogger("sessionkit")


class ChannelOwner(Protocol):
    """What a channel needs of the session it belongs to. Implemented by ``Session``."""

    id: str

    @property
    def client(self) -> Host: ...

    def span_parent(self) -> Optional[Context]:
        """The parent context for a span of this session (None: the current context)."""
        ...

    def report_finding(self, finding: Finding, key: Any = None) -> None:
        """File a finding about the session (once per ``key``)."""
        ...


class SessionChannels:
    """One session's channels: the open ones and its figures (a session without channels never
    makes one); its channels and attempts report to it. The registry holds the client's open
    channels across its sessions."""

    __slots__ = (
        "session",
        "_lock",
        "_registry",
        "open",
        "opened",
        "closed",
        "leaked",
        "attempts",
        "attempts_failed",
        "_in_row",
    )

    def __init__(self, session: ChannelOwner, registry: ChannelRegistry) -> None:
        self.session = session
        self._lock = threading.Lock()
        self._registry = registry
        self.open: list[Channel] = []
        self.opened = 0
        self.closed = 0
        self.leaked = 0
        self.attempts = 0
        self.attempts_failed = 0
        self._in_row: dict[str, int] = {}  # creation attempts per platform since the last success

    def open_channel(self, platform: Any, channel_id: Any, purpose: Any, attributes: dict[str, Any]) -> Channel:
        if not isinstance(platform, str) or not platform:
            raise TypeError(f"sessionkit: platform must be a non-empty string such as 'discord', got {platform!r}")
        if channel_id is None or channel_id == "":
            raise TypeError("sessionkit: channel_id is required: the platform's id of the channel")
        channel = Channel(
            self,
            platform,
            to_text(channel_id, 256),
            None if purpose is None else to_text(purpose, 256),
            to_attributes(attributes),
        )
        try:
            self._registry.add(channel)
        except Exception:
            channel.abandon()
            raise
        with self._lock:
            self.open.append(channel)
            self.opened += 1
            self._in_row[platform] = 0
        return channel

    def attempt(self, platform: str, purpose: Optional[str]) -> AbstractContextManager[ChannelAttempt]:
        with self._lock:
            number = self._in_row[platform] = self._in_row.get(platform, 0) + 1
        return _attempt(self, platform, purpose, number)

    def find(self, platform: str, channel_id: Any) -> Channel:
        """The open channel ``channel_id`` of ``platform``; ChannelError if it is not open here."""
        wanted = to_text(channel_id, 256)
        with self._lock:
            channel = next((c for c in self.open if c.platform == platform and c.channel_id == wanted), None)
        if channel is None:
            raise ChannelError(f"sessionkit: no open {platform} channel {wanted!r} in session {self.session.id}")
        return channel

    def channel_closed(self, channel: Channel) -> None:
        self._registry.forget(channel)
        with self._lock:
            if channel in self.open:
                self.open.remove(channel)
            if channel.leaked:
                self.leaked += 1
            else:
                self.closed += 1

    def channel_attempted(self, platform: str, ok: bool) -> None:
        with self._lock:
            self.attempts += 1
            if not ok:
                self.attempts_failed += 1
            failed = self.attempts_failed
        storm = self._registry.attempt_finished(platform, ok)
        if storm is not None:
            attempts, window, rate = storm
            self.session.report_finding(
                Finding(
                    "channel_retry_storm",
                    Severity.WARNING,
                    f"{attempts} {platform} channel creation attempts in {window:.0f}s (more than {rate}): a retry "
                    "storm. Back off with jitter and cap retries; failed attempts may leave channels behind.",
                    {"platform": platform, "attempts": attempts, "window_seconds": window, "failed_attempts": failed},
                    time_ns=time.time_ns(),
                ),
                ("storm", platform, attempts // max(rate, 1)),
            )

    def leak_open(self, why: str) -> None:
        """Close every channel still open as leaked (its session ended), with a warning each."""
        with self._lock:
            still_open = list(self.open)
        for channel in still_open:
            channel.leak(why)

    def summary_fields(self) -> dict[str, Any]:
        """The channel fields of ``SessionSummary``."""
        return {
            "channels_opened": self.opened,
            "channels_closed": self.closed,
            "channels_leaked": self.leaked,
            "channel_attempts": self.attempts,
            "channel_attempts_failed": self.attempts_failed,
        }


class Channel:
    """An open channel. Record its events with :meth:`record`; :meth:`close` it when done."""

    def __init__(
        self, book: SessionChannels, platform: str, channel_id: str, purpose: Optional[str], attributes: dict[str, Any]
    ) -> None:
        self.book = book
        self.platform = platform
        self.channel_id = channel_id
        self.purpose = purpose
        self.opened_at = time.monotonic()
        self.closed = False
        self.leaked = False
        attrs = {semconv.CHANNEL_PLATFORM: platform, semconv.CHANNEL_ID: channel_id, **attributes}
        if purpose is not None:
            attrs[semconv.CHANNEL_PURPOSE] = purpose
        session = book.session
        self._span: Span = session.client.tracer.start_span(
            f"channel {platform}", context=session.span_parent(), kind=SpanKind.CLIENT, attributes=attrs
        )
        self._lock = threading.Lock()

    @property
    def session(self) -> Session:
        """The session this belongs to."""
        return cast("Session", self.book.session)

    @property
    def age_seconds(self) -> float:
        return time.monotonic() - self.opened_at

    def record(self, event: str, **attributes: Any) -> None:
        """An event on the channel's span (``message.sent``, ``reply.streamed``, ...)."""
        self._span.add_event(to_text(event, 256), attributes=to_attributes(attributes))

    def close(self, reason: Optional[str] = None) -> None:
        """Close the channel (deleted on the platform). Closing twice does nothing."""
        self._finish(leaked=False, reason=reason)

    def _finish(self, *, leaked: bool, reason: Optional[str]) -> bool:
        with self._lock:
            if self.closed:
                return False
            self.closed = True
            self.leaked = leaked
        span = self._span
        try:
            span.set_attribute(semconv.CHANNEL_LEAKED, leaked)
            span.set_attribute(semconv.CHANNEL_OPEN_SECONDS, round(self.age_seconds, 6))
            if reason is not None:
                span.set_attribute(semconv.CHANNEL_CLOSE_REASON, to_text(reason, 512))
            if leaked:
                span.set_status(Status(StatusCode.ERROR, reason or "channel leaked"))
        except Exception:
            logger.debug("sessionkit: could not record a channel's end", exc_info=True)
        span.end()
        self.book.channel_closed(self)
        return True

    def leak(self, why: str) -> None:
        """Close the channel as leaked (still open when its session ended, or past its time to
        live), with a warning."""
        if self._finish(leaked=True, reason=why):
            span_id = self._span.get_span_context().span_id
            self.book.session.report_finding(
                Finding(
                    "channel_leaked",
                    Severity.WARNING,
                    f"{self.platform} channel {self.channel_id} leaked ({why}; open {self.age_seconds:.1f}s). "
                    "Delete it on the platform: client.open_channels() lists the ones still open.",
                    {
                        "platform": self.platform,
                        "channel_id": self.channel_id,
                        "open_seconds": round(self.age_seconds, 3),
                    },
                    (format(span_id, "016x"),) if span_id else (),
                    time_ns=time.time_ns(),
                ),
                ("leak", self.platform, self.channel_id),
            )

    def abandon(self) -> None:
        """End the span of a channel that could not be opened (the registry refused it)."""
        self._span.end()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.close(reason=f"{type(exc).__name__}: {exc}" if exc is not None else "block exited")

    def __repr__(self) -> str:
        return f"<Channel {self.platform}:{self.channel_id} {'closed' if self.closed else 'open'}>"


class ChannelAttempt:
    """One try at creating a channel. Call :meth:`opened` with the new channel's id on success."""

    def __init__(self, book: SessionChannels, platform: str, purpose: Optional[str], number: int) -> None:
        self.book = book
        self.platform = platform
        self.purpose = purpose
        self.number = number
        self.channel: Optional[Channel] = None
        session = book.session
        self._span = session.client.tracer.start_span(
            f"channel.create {platform}",
            context=session.span_parent(),
            kind=SpanKind.CLIENT,
            attributes={semconv.CHANNEL_PLATFORM: platform, semconv.CHANNEL_ATTEMPT: number},
        )

    @property
    def session(self) -> Session:
        """The session this belongs to."""
        return cast("Session", self.book.session)

    def opened(self, channel_id: Any, **attributes: Any) -> Channel:
        """The platform created the channel: open it in the session and return it."""
        self.channel = self.book.open_channel(self.platform, channel_id, self.purpose, attributes)
        self._span.set_attribute(semconv.CHANNEL_ID, self.channel.channel_id)
        return self.channel

    def _finish(self, exc: Optional[BaseException]) -> None:
        ok = exc is None and self.channel is not None
        span = self._span
        span.set_attribute(semconv.CHANNEL_ATTEMPT_OK, ok)
        if not ok:
            why = f"{type(exc).__name__}: {exc}" if exc is not None else "no channel was opened"
            span.set_status(Status(StatusCode.ERROR, why))
            if exc is not None:
                span.set_attribute(semconv.ERROR_TYPE, type(exc).__qualname__)
        span.end()
        self.book.channel_attempted(self.platform, ok)


class ChannelRegistry:
    """The client's open channels across its sessions, the limits, and the retry-storm watch."""

    def __init__(self, client: Host) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], Channel] = {}
        self._attempts: dict[str, collections.deque[float]] = {}
        self._storm_warned_at: dict[str, float] = {}
        self._limit_level: dict[str, int] = {}  # 0 below 80%, 1 at 80%, 2 at the limit
        self._janitor: Optional[threading.Thread] = None

    def _counter(self) -> Any:
        return self._client.instruments(
            semconv.INSTRUMENTS_CHANNELS,
            lambda meter: meter.create_up_down_counter(
                semconv.METRIC_CHANNELS_OPEN, unit="{channel}", description="Chat channels open now"
            ),
        )

    # -- opening and closing -------------------------------------------------------------------
    def add(self, channel: Channel) -> None:
        key = (channel.platform, channel.channel_id)
        with self._lock:
            existing = self._open.get(key)
            if existing is not None and not existing.closed:
                raise ChannelError(
                    f"sessionkit: {channel.platform} channel {channel.channel_id} is already open "
                    f"(session {existing.book.session.id}); close it before opening it again"
                )
            self._open[key] = channel
            count = sum(1 for p, _ in self._open if p == channel.platform)
        self._counter().add(1, {semconv.CHANNEL_PLATFORM: channel.platform})
        self._check_limit(channel.platform, count)
        self._ensure_janitor()

    def forget(self, channel: Channel) -> None:
        key = (channel.platform, channel.channel_id)
        with self._lock:
            if self._open.get(key) is not channel:
                return
            del self._open[key]
            count = sum(1 for p, _ in self._open if p == channel.platform)
        self._counter().add(-1, {semconv.CHANNEL_PLATFORM: channel.platform})
        self._check_limit(channel.platform, count)

    def get(self, platform: str, channel_id: str) -> Optional[Channel]:
        with self._lock:
            return self._open.get((platform, channel_id))

    def listing(self) -> list[OpenChannel]:
        from ._models import OpenChannel

        self.sweep()
        with self._lock:
            channels = list(self._open.values())
        return [
            OpenChannel(
                platform=c.platform,
                channel_id=c.channel_id,
                session_id=c.book.session.id,
                purpose=c.purpose,
                age_seconds=c.age_seconds,
            )
            for c in sorted(channels, key=lambda c: c.opened_at)
        ]

    # -- limits ---------------------------------------------------------------------------------
    def _check_limit(self, platform: str, count: int) -> None:
        limit = self._client.config.channel_limits.get(platform)
        if not limit:
            return
        level = 2 if count >= limit else 1 if count >= 0.8 * limit else 0
        with self._lock:
            previous = self._limit_level.get(platform, 0)
            self._limit_level[platform] = level
        if level > previous:
            if level == 2:
                logger.warning(
                    "sessionkit: %d %s channels open: the limit of %d is reached; new channels will "
                    "fail until some are deleted",
                    count,
                    platform,
                    limit,
                )
            else:
                logger.warning(
                    "sessionkit: %d %s channels open, 80%% of the limit of %d; look for leaks with "
                    "client.open_channels()",
                    count,
                    platform,
                    limit,
                )

    # -- attempts and retry storms ---------------------------------------------------------------
    def attempt_finished(self, platform: str, ok: bool) -> Optional[tuple[int, float, int]]:
        """Count an attempt; at a retry storm (once per window) its figures: (attempts, window, rate)."""
        config = self._client.config
        now = time.monotonic()
        with self._lock:
            window = self._attempts.setdefault(platform, collections.deque())
            window.append(now)
            while window and window[0] < now - config.channel_attempt_window:
                window.popleft()
            storm = len(window) > config.channel_attempt_rate
            warned = self._storm_warned_at.get(platform)
            warn = storm and (warned is None or now - warned > config.channel_attempt_window)
            if warn:
                self._storm_warned_at[platform] = now
            attempts = len(window)
        if warn:
            return attempts, config.channel_attempt_window, config.channel_attempt_rate
        return None

    # -- leaks by age ---------------------------------------------------------------------------
    def sweep(self) -> None:
        """Leak every channel open longer than ``channel_ttl``."""
        ttl = self._client.config.channel_ttl
        if ttl is None:
            return
        with self._lock:
            stale = [c for c in self._open.values() if c.age_seconds > ttl]
        for channel in stale:
            channel.leak(f"open longer than channel_ttl={ttl:g}s")

    def _ensure_janitor(self) -> None:
        if self._client.config.channel_ttl is None or self._janitor is not None:
            return
        with self._lock:
            if self._janitor is not None:
                return
            self._janitor = threading.Thread(target=self._watch, name="sessionkit-channel-ttl", daemon=True)
            self._janitor.start()

    def _watch(self) -> None:
        while not self._client.closed:
            ttl = self._client.config.channel_ttl
            if ttl is None:
                break
            time.sleep(min(max(ttl / 4, 0.02), 5.0))
            with internal_errors("checking channels' time to live"):
                self.sweep()
        self._janitor = None


@contextmanager
def _attempt(book: SessionChannels, platform: str, purpose: Optional[str], number: int) -> Iterator[ChannelAttempt]:
    current_attempt = ChannelAttempt(book, platform, purpose, number)
    with trace.use_span(
        current_attempt._span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    ):
        try:
            yield current_attempt
        except BaseException as exc:
            current_attempt._finish(exc)
            raise
    current_attempt._finish(None)
