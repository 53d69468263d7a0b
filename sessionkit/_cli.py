"""The ``sessionkit`` command: demo, sessions, show, doctor."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from ._config import Config
from ._export.factory import probe_collector
from ._export.reader import find_session, read_sessions
from ._render import SESSION_HEADER, format_table, session_rows, session_turns


def _folder(arg: Optional[str]) -> Path:
    return Path(arg) if arg else Config.resolve().file_dir


def cmd_sessions(args: argparse.Namespace) -> int:
    folder = _folder(args.dir)
    sessions = read_sessions(folder)
    if not sessions:
        print(f"No sessions in {folder}. Run `sessionkit demo`, or init() with the default file exporter.")
        return 0
    print(format_table(session_rows(sessions[-args.limit :]), SESSION_HEADER))
    print(f"\n{len(sessions)} sessions in {folder}; `sessionkit show ID` prints one turn by turn.")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    folder = _folder(args.dir)
    session = find_session(folder, args.session_id)
    if session is None:
        print(f"No single session with an id starting {args.session_id!r} in {folder}.", file=sys.stderr)
        return 1
    print(
        f"session {session.id}  name={session.name}  thread={session.thread_id or '-'}  "
        f"user={session.user_id or '-'}  state={session.state}"
    )
    print(session_turns(session))
    return 0


def check_destination(config: Config, timeout: float = 3.0) -> tuple[bool, str]:
    """Can spans get where the config sends them? Sends an empty OTLP request, never spans."""
    exporter = config.exporter
    if exporter in ("otlp", "otlp-grpc"):
        status, message = probe_collector(config, timeout)
        return status is not None and status < 300, message
    if exporter == "file":
        folder = Path(config.file_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / ".sessionkit-doctor"
            probe.write_text("ok")
            probe.unlink()
            return True, f"local store {folder} is writable"
        except OSError as exc:
            return False, f"local store {folder} is not writable: {exc}"
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

    sessions = sub.add_parser("sessions", help="list the sessions in the local store")
    sessions.add_argument("--dir", help="folder to read (default: the configured file_dir)")
    sessions.add_argument("--limit", type=int, default=50)
    sessions.set_defaults(func=cmd_sessions)

    show = sub.add_parser("show", help="print one session turn by turn: figures, messages, spans")
    show.add_argument("session_id", help="a session id or its first characters")
    show.add_argument("--dir", help="folder to read (default: the configured file_dir)")
    show.set_defaults(func=cmd_show)
    doctor = sub.add_parser("doctor", help="print the effective configuration (secrets masked) and check the collector")
    doctor.add_argument("--endpoint", help="check this endpoint instead of the configured one")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
