"""The local store: an SQLite database of spans, sessions, turns and session events."""
