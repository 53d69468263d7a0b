from __future__ import annotations

import pytest
import sessionkit
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sessionkit import Config, ConfigError


def test_defaults_work_offline_with_the_file_exporter(tmp_path):
    config = Config.resolve()
    assert config.exporter == "file"
    assert config.file_dir == tmp_path / "store"  # from SESSIONKIT_FILE_DIR set by conftest


def test_argument_beats_sessionkit_env_beats_otel_env_beats_default(monkeypatch):
    assert Config.resolve().service_name == "sessionkit"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-otel")
    assert Config.resolve().service_name == "from-otel"
    monkeypatch.setenv("SESSIONKIT_SERVICE_NAME", "from-sessionkit")
    assert Config.resolve().service_name == "from-sessionkit"
    assert Config.resolve(service_name="from-arg").service_name == "from-arg"


def test_otlp_endpoint_headers_protocol_and_timeout_from_otel_env(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9999")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cret,x-team=a%20b")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3")
    config = Config.resolve()
    assert config.exporter == "otlp"  # an endpoint with no exporter named means OTLP
    assert config.traces_url() == "http://127.0.0.1:9999/v1/traces"
    assert config.headers == {"api-key": "s3cret", "x-team": "a b"}
    assert config.export_timeout == 3.0
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:7777/v1/traces")
    assert Config.resolve().traces_url() == "http://127.0.0.1:7777/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert Config.resolve().exporter == "otlp-grpc"


def test_masked_config_never_shows_header_values(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc123")
    masked = Config.resolve().masked()
    assert masked["headers"] == {"authorization": "***"}
    assert "abc123" not in repr(masked)


@pytest.mark.parametrize(
    ("kwargs", "field", "hint"),
    [
        ({"exporter": "otlpx"}, "exporter", "'otlp'"),
        ({"protocol": "http/json"}, "protocol", "grpc"),
        ({"max_queue_size": 0}, "max_queue_size", "greater than or equal to 1"),
        ({"endpoint": "127.0.0.1:4318"}, "endpoint", "with a scheme"),
        ({"tracer_provider": object()}, "tracer_provider", "TracerProvider"),
        ({"export_timeout": "soon"}, "export_timeout", "number"),
    ],
)
def test_bad_values_raise_config_error_naming_field_value_and_fix(kwargs, field, hint):
    with pytest.raises(ConfigError) as info:
        sessionkit.Client(**kwargs)
    message = str(info.value)
    assert info.value.field == field
    assert field in message and hint in message
    assert repr(next(iter(kwargs.values())))[:10] in message


def test_bad_env_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("SESSIONKIT_MAX_QUEUE_SIZE", "lots")
    with pytest.raises(ConfigError, match="environment variable SESSIONKIT_MAX_QUEUE_SIZE"):
        Config.resolve()


def test_unknown_setting_lists_accepted_ones():
    with pytest.raises(ConfigError, match="unknown setting 'servce_name'.*service_name"):
        sessionkit.Client(servce_name="x")  # type: ignore[call-arg]


def test_exporter_instance_is_used_as_is():
    exporter = InMemorySpanExporter()
    c = sessionkit.Client(exporter=exporter)
    try:
        with c.session("s"):
            pass
        c.flush(timeout=5)
        assert [s.name for s in exporter.get_finished_spans()][-1] == "s"
    finally:
        c.shutdown(timeout=2)


def test_capture_content_follows_the_otel_genai_variable(monkeypatch):
    assert Config.resolve().capture_content is False
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    assert Config.resolve().capture_content is True


def test_every_setting_is_declared_once_and_options_names_each():
    """Config's fields are the settings (type, default, schema, environment); Options is what
    type checkers see of init()'s keywords, and docs/configuration.md documents each."""
    import dataclasses
    import typing
    from pathlib import Path

    from sessionkit._config import ENV_NAMES

    names = set(Config.names())
    assert set(typing.get_type_hints(sessionkit.Options)) == names
    for field in dataclasses.fields(Config):
        assert set(field.metadata) == {"schema", "env"}, field.name
        assert ENV_NAMES.get(field.name, ()) == field.metadata["env"]
    documented = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in documented)
    assert not missing, missing
