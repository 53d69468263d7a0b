"""The ``sessionkit`` command: demo, sessions, show, export, doctor."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from ._config import Config
from ._export.factory import probe_collector
from ._render import SESSION_HEADER, clip, format_table, session_rows, session_state, session_turns, stored_cost
from ._store.filters import STATES
from ._store.query import Store, listed_row, listed_rows, stored_session
from ._store.schema import ExportRefused, StoreError


def _folder(arg: Optional[str]) -> Path:
    return Path(arg) if arg else Config.resolve().file_dir


def _open(arg: Optional[str]) -> Store:
    return Store(_folder(arg), say=lambda text: print(text, file=sys.stderr))


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "user": args.user,
        "thread": args.thread,
        "state": args.state,
        "since": args.since,
        "name": args.name,
        "finding": args.finding,
    }


def cmd_sessions(args: argparse.Namespace) -> int:
    with _open(args.dir) as store:
        filters = _filters(args)
        if args.json:
            found = store.sessions(**filters, limit=args.limit, offset=args.offset)
            print(json.dumps([s.model_dump(mode="json", exclude={"turns"}) for s in found], indent=2))
            return 0
        sessions = listed_rows(store, **filters, limit=args.limit, offset=args.offset)
        total = store.count(**filters)
        if not sessions:
            if total or any(v is not None for v in filters.values()):
                print(f"No sessions match in {store.path} ({total} match the filters).")
            else:
                print(
                    f"No sessions in {store.folder}. Run `sessionkit demo`, or init() with the default file exporter."
                )
            return 0
        print(format_table(session_rows(sessions), SESSION_HEADER))
        shown_to = args.offset + len(sessions)
        more = f"; the next page: --offset {shown_to}" if shown_to < total else ""
        print(
            f"\n{args.offset + 1}-{shown_to} of {total} sessions (newest first) in {store.path}{more}; "
            "`sessionkit show ID` prints one turn by turn."
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _open(args.dir) as store:
        session_id = store.resolve(args.session_id)
        if session_id is None:
            several = len(store.session_ids(args.session_id)) > 1
            why = "several sessions have" if several else "no session has"
            print(f"{why} an id starting {args.session_id!r} in {store.path}.", file=sys.stderr)
            return 1
        if args.json:
            data = store.session(session_id)
            assert data is not None
            print(
                json.dumps(
                    {
                        **data.model_dump(mode="json"),
                        "spans": [s.model_dump(mode="json") for s in store.spans(session_id)],
                    },
                    indent=2,
                )
            )
            return 0
        summary = listed_row(store, session_id)
        stored = stored_session(store, session_id)
        findings = store.findings(session_id, limit=None)
    if summary is None:
        return 1
    cost = "incomplete" if summary.cost_incomplete else stored_cost(summary.cost_usd, summary.llm_calls)
    print(
        f"session {summary.session_id}  name={summary.name}  thread={summary.thread_id or '-'}  "
        f"user={summary.user_id or '-'}  state={session_state(summary)}  "
        f"{summary.duration_seconds:.2f}s  cost={cost}"
    )
    if stored is None:
        return 0
    if args.tree:
        print(session_turns(stored))
        for finding in findings:
            where = f"turn {finding.turn}" if finding.turn is not None else "session"
            print(f"{where}  {finding.severity.value} {finding.kind}: {finding.message}")
        return 0
    from ._waterfall import from_stored, waterfall_text

    width = args.width or shutil.get_terminal_size((100, 24)).columns
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    print(
        waterfall_text(
            [from_stored(s) for s in stored.work_spans_and_turns], width=width, colour=colour, findings=findings
        )
    )
    for turn in stored.turns:
        if turn.input is not None or turn.output is not None:
            print(f"turn {turn.index}  in:  {clip(turn.input)}\n        out: {clip(turn.output)}")
    print(
        f"{summary.turn_count} turns  spans={summary.span_count}  llm={summary.llm_calls}  "
        f"tokens={summary.input_tokens}/{summary.output_tokens}  cost={cost}  errors={summary.errors}  "
        f"findings={len(findings)}  state={session_state(summary)}"
    )
    return 0


def _progress(label: str) -> Callable[[int, int], None]:
    """A progress line on stderr when it is a terminal (nothing otherwise)."""
    if not sys.stderr.isatty():
        return lambda done, total: None

    def show(done: int, total: int) -> None:
        share = f" ({done * 100 // total}%)" if total else ""
        end = "\n" if done >= total else ""
        print(f"\r{label}: {done}/{total} spans{share}", end=end, file=sys.stderr, flush=True)

    return show


def cmd_export(args: argparse.Namespace) -> int:
    with _open(args.dir) as store:
        try:
            if args.jsonl:
                count = store.export_jsonl(args.jsonl, since=args.since, progress=_progress("writing"))
                print(f"wrote {count} spans to {args.jsonl} (OTLP JSON lines)")
            else:
                count = store.export(args.endpoint, since=args.since, progress=_progress("sending"))
                print(f"sent {count} spans to {args.endpoint}")
        except ExportRefused as exc:  # the destination's fault: 1 (a store fault is 2, from main)
            print(str(exc), file=sys.stderr)
            return 1
    return 0


def check_destination(config: Config, timeout: float = 3.0) -> tuple[bool, str]:
    """Can spans get where the config sends them? Sends an empty OTLP request, never spans."""
    exporter = config.exporter
    if exporter in ("otlp", "otlp-grpc"):
        status, message = probe_collector(config, timeout)
        return status is not None and status < 300, message
    if exporter == "file":
        from ._store.schema import check_usable, db_path

        try:
            check_usable(config.file_dir)
        except StoreError as exc:
            return False, str(exc)
        return True, f"local store {db_path(config.file_dir)} is writable"
    return True, f"exporter {exporter!r}: nothing to check"


def cmd_doctor(args: argparse.Namespace) -> int:
    from ._errors import ConfigError

    try:
        config = Config.resolve(**({"endpoint": args.endpoint} if args.endpoint else {}))
    except ConfigError as exc:
        print(f"configuration: {exc}")
        return 1
    print("effective configuration (arguments > SESSIONKIT_* > OTEL_* > defaults; header values masked):")
    for key, value in sorted(config.masked().items()):
        print(f"  {key:<24} {value}")
    ok, message = check_destination(config)
    print(f"\n{'ok' if ok else 'PROBLEM'}: {message}")
    return 0 if ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(endpoint=args.endpoint, users=args.users, turns=args.turns, file_dir=args.dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sessionkit", description="Observability for AI agent sessions.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run a small multi-user agent and show its sessions")
    demo.add_argument("--endpoint", help="send spans over OTLP/HTTP to this collector instead of the local store")
    demo.add_argument("--users", type=int, default=4)
    demo.add_argument("--turns", type=int, default=5)
    demo.add_argument("--dir", help="local store folder (default: the configured file_dir)")
    demo.set_defaults(func=cmd_demo)

    sessions = sub.add_parser("sessions", help="list the sessions in the local store, newest first")
    sessions.add_argument("--dir", help="store folder to read (default: the configured file_dir)")
    sessions.add_argument("--user", help="only this user's sessions")
    sessions.add_argument("--thread", help="only this thread's (conversation's) sessions")
    sessions.add_argument("--state", choices=STATES, help="only sessions that ended so, or are unfinished")
    sessions.add_argument("--since", help="only sessions started since: 30m, 2h, 7d, or an ISO date/time")
    sessions.add_argument("--name", help="only sessions of this name (a glob: 'support-*')")
    sessions.add_argument("--finding", help="only sessions with a finding of this kind: loop, budget, ...")
    sessions.add_argument("--limit", type=int, default=50, help="sessions per page (default 50)")
    sessions.add_argument("--offset", type=int, default=0, help="skip this many (the next page)")
    sessions.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    sessions.set_defaults(func=cmd_sessions)

    show = sub.add_parser("show", help="print one session turn by turn: figures, messages, spans")
    show.add_argument("session_id", help="a session id or its first characters")
    show.add_argument("--dir", help="store folder to read (default: the configured file_dir)")
    show.add_argument("--json", action="store_true", help="print the session, its turns and spans as JSON")
    show.add_argument("--width", type=int, help="columns to draw in (default: the terminal's width)")
    show.add_argument(
        "--color", choices=("auto", "always", "never"), default="auto", help="colours (auto: on a terminal)"
    )
    show.add_argument("--tree", action="store_true", help="an indented tree per turn instead of the waterfall")
    show.set_defaults(func=cmd_show)

    export = sub.add_parser("export", help="send the stored spans to an OTLP collector, or write OTLP JSON lines")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--endpoint", help="an OTLP/HTTP collector, e.g. http://127.0.0.1:6006 (Phoenix)")
    target.add_argument("--jsonl", help="write OTLP JSON lines to this file")
    export.add_argument("--since", help="only sessions started since: 30m, 2h, 7d, or an ISO date/time")
    export.add_argument("--dir", help="store folder to read (default: the configured file_dir)")
    export.set_defaults(func=cmd_export)

    doctor = sub.add_parser("doctor", help="print the effective configuration (secrets masked) and check the collector")
    doctor.add_argument("--endpoint", help="check this endpoint instead of the configured one")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ._errors import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("limit", "offset"):
        if getattr(args, name, 0) < 0:
            parser.error(f"--{name} must be 0 or more")
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `sessionkit show ID | head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    except (ConfigError, StoreError) as exc:
        print(str(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
