"""SessionSpanProcessor against a fake session index: stamp on start, count on end, forward."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from sessionkit._processor import SessionSpanProcessor


class Owner:
    def __init__(self, session_id: str) -> None:
        self.id = session_id
        self.export_project = None
        self.stamp: Mapping[str, Any] = {"session.id": session_id, "user.id": "u-1"}
        self.counted: list[str] = []
        self.started: list[tuple[str, bool]] = []  # (span name, found by its trace)

    def on_span_start(self, span: Any, parent_context: Any, by_trace: bool) -> Mapping[str, Any]:
        self.started.append((span.name, by_trace))
        return self.stamp

    def on_span_end(self, span: ReadableSpan) -> None:
        self.counted.append(span.name)


class Index:
    def __init__(self) -> None:
        self.by_trace: dict[int, Owner] = {}
        self.by_id: dict[str, Owner] = {}
        self.arriving: dict[int, int] = {}
        self.current: Optional[Owner] = None

    def current_session(self) -> Optional[Owner]:
        return self.current


class Collect:
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)

    def shutdown(self, timeout: float) -> bool:
        return True

    def flush(self, timeout: float) -> bool:
        return True


def make() -> tuple[Index, SessionSpanProcessor, Collect, Any]:
    index = Index()
    processor = SessionSpanProcessor(index)
    processor.pipeline = sink = Collect()
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return index, processor, sink, provider.get_tracer("t")


def test_a_span_in_a_known_trace_is_stamped_and_counted_into_that_session():
    index, processor, sink, tracer = make()
    with tracer.start_as_current_span("root") as root:
        owner = index.by_trace[root.get_span_context().trace_id] = Owner("s-1")
        with tracer.start_as_current_span("child"):
            pass
    assert dict(sink.spans[0].attributes) == {"session.id": "s-1", "user.id": "u-1"}
    assert owner.counted == ["child", "root"]  # the root was started before the index knew it
    assert owner.started == [("child", True)]
    assert processor.spans_started == processor.spans_ended == 2


def test_a_span_outside_any_known_trace_takes_the_resolved_session_or_none():
    index, processor, sink, tracer = make()
    with tracer.start_as_current_span("orphan"):
        pass
    index.current = Owner("s-2")
    index.by_id["s-2"] = index.current
    with tracer.start_as_current_span("resolved"):
        pass
    assert "session.id" not in sink.spans[0].attributes and processor.spans_without_session == 1
    assert sink.spans[1].attributes["session.id"] == "s-2"
    assert index.current.counted == ["resolved"]  # found by its stamped session id at the end
    assert index.current.started == [("resolved", False)]  # not by its trace: the session may start a turn


def test_an_error_in_a_session_is_logged_and_the_span_still_goes_on(caplog):
    index, processor, sink, tracer = make()

    class Broken(Owner):
        def on_span_end(self, span: ReadableSpan) -> None:
            raise RuntimeError("broken on purpose")

    index.current = Broken("s-3")
    index.by_id["s-3"] = index.current
    with caplog.at_level("ERROR", logger="sessionkit"):
        with tracer.start_as_current_span("goes-on"):
            pass
    assert [s.name for s in sink.spans] == ["goes-on"] and "error while counting a span" in caplog.text


def test_without_a_pipeline_the_observer_sees_each_span():
    index = Index()
    seen: list[str] = []
    processor = SessionSpanProcessor(index, observe=lambda spans: seen.extend(s.name for s in spans))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("observed"):
        pass
    assert seen == ["observed"] and processor.force_flush() is True
