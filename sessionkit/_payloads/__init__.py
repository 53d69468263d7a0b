"""LLM payloads: recognising endpoints and parsing each provider's requests, responses and streams.

Pure functions over decoded JSON and bytes; no I/O, and nothing here raises on unexpected shapes.
"""
