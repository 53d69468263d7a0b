"""Every attribute and span name sessionkit writes, in one place.

Names that the OpenTelemetry semantic conventions define come from the
``opentelemetry-semantic-conventions`` package; the OpenInference names are the ones Arize
Phoenix reads; ``sessionkit.*`` names are our own.
"""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv._incubating.attributes import session_attributes as _session
from opentelemetry.semconv._incubating.attributes import user_attributes as _user
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import http_attributes as _http
from opentelemetry.semconv.attributes import server_attributes as _server
from opentelemetry.semconv.attributes import service_attributes as _service
from opentelemetry.semconv.attributes import url_attributes as _url

# -- Session identity, stamped on every span of a session -------------------------------------
SESSION_ID = _session.SESSION_ID  # "session.id": Phoenix and most dashboards group by it
USER_ID = _user.USER_ID  # "user.id"
GEN_AI_CONVERSATION_ID = _gen_ai.GEN_AI_CONVERSATION_ID  # the session's thread_id
SESSION_NAME = "sessionkit.session.name"
TAGS = "tag.tags"  # OpenInference: a list of strings

# -- On the session's root span only ----------------------------------------------------------
METADATA = "metadata"  # OpenInference: a JSON object as a string
SESSION_END_STATE = "sessionkit.session.end_state"
SESSION_END_REASON = "sessionkit.session.end_reason"
SESSION_SPAN_COUNT = "sessionkit.session.span_count"
SESSION_LLM_CALLS = "sessionkit.session.llm_calls"
SESSION_INPUT_TOKENS = "sessionkit.session.input_tokens"
SESSION_OUTPUT_TOKENS = "sessionkit.session.output_tokens"
SESSION_ERRORS = "sessionkit.session.errors"
SESSION_TURNS = "sessionkit.session.turns"
SESSION_COST = "sessionkit.session.cost_usd"
SESSION_COST_INCOMPLETE = "sessionkit.session.cost_incomplete"  # an LLM call had no known price
SESSION_REQUESTS_HANDED_ON = "sessionkit.session.requests_handed_on"  # requests that carried it to other services
RECORD_SESSION_ID = "sessionkit.session.id"
"""The session's id on its record span with ``trace_per="turn"``: not ``session.id``, so that a
dashboard grouping traces by ``session.id`` shows the turns, not an extra empty one."""
RECORD_THREAD_ID = "sessionkit.session.thread_id"
"""The thread on the record, likewise: Phoenix groups by ``gen_ai.conversation.id`` too."""
SESSION_PREVIOUS_ID = _session.SESSION_PREVIOUS_ID  # "session.previous_id"

# -- Turns: each turn's root span (and, the index, every span of the turn) --------------------
TURN_INDEX = "sessionkit.turn.index"
SAMPLE_RATE = "sessionkit.sample_rate"  # on kept spans when sample_rate < 1: a backend scales counts by 1/rate
TURN_IMPLICIT = "sessionkit.turn.implicit"  # the turn is a top-level call, not a session.turn() block
TURN_LLM_CALLS = "sessionkit.turn.llm_calls"
TURN_INPUT_TOKENS = "sessionkit.turn.input_tokens"
TURN_OUTPUT_TOKENS = "sessionkit.turn.output_tokens"
TURN_ERRORS = "sessionkit.turn.errors"
TURN_COST = "sessionkit.turn.cost_usd"
TURN_SPAN_NAME = "turn"

# -- Session events on the logs signal (the semconv "session" namespace) ----------------------
EVENT_SESSION_START = "session.start"
EVENT_SESSION_END = "session.end"

# What a span is to sessionkit: the session root, or the marker exported at session start so
# that a session shows in the collector before it ends.
SPAN_TYPE = "sessionkit.span.type"
SPAN_TYPE_SESSION = "session"
SPAN_TYPE_SESSION_START = "session.start"
SPAN_TYPE_TURN = "turn"
SESSION_SPAN_TYPES = frozenset((SPAN_TYPE_SESSION, SPAN_TYPE_SESSION_START))  # not counted as the session's spans
SESSION_START_SPAN_NAME = "session.start"

# -- Channels (sessionkit.channels) ----------------------------------------------------------
CHANNEL_PLATFORM = "sessionkit.channel.platform"
CHANNEL_ID = "sessionkit.channel.id"
CHANNEL_PURPOSE = "sessionkit.channel.purpose"
CHANNEL_LEAKED = "sessionkit.channel.leaked"
CHANNEL_CLOSE_REASON = "sessionkit.channel.close_reason"
CHANNEL_OPEN_SECONDS = "sessionkit.channel.open_seconds"
CHANNEL_ATTEMPT = "sessionkit.channel.attempt"
CHANNEL_ATTEMPT_OK = "sessionkit.channel.attempt.ok"
METRIC_CHANNELS_OPEN = "sessionkit.channels.open"

# -- History loads (sessionkit.history) -------------------------------------------------------
HISTORY_LOAD_SPAN_NAME = "history.load"
HISTORY_SOURCE = "sessionkit.history.source"
HISTORY_CONVERSATION_ID = "sessionkit.history.conversation_id"
HISTORY_TURN = "sessionkit.history.turn"
HISTORY_MESSAGES = "sessionkit.history.messages"
HISTORY_MESSAGES_REDUNDANT = "sessionkit.history.messages_redundant"
HISTORY_BYTES = "sessionkit.history.bytes"
HISTORY_CACHE_HIT = "sessionkit.history.cache_hit"
METRIC_HISTORY_DURATION = "sessionkit.history.load.duration"
METRIC_HISTORY_MESSAGES = "sessionkit.history.load.messages"

# Keys of the client's instrument cache (``Client.instruments``): one per group of instruments.
INSTRUMENTS_CHANNELS = METRIC_CHANNELS_OPEN
INSTRUMENTS_HISTORY = "sessionkit.history.load"
INSTRUMENTS_GEN_AI = "gen_ai.client"

# -- Resource ---------------------------------------------------------------------------------
SERVICE_NAME = _service.SERVICE_NAME
OPENINFERENCE_PROJECT_NAME = "openinference.project.name"

# -- GenAI semantic conventions ---------------------------------------------------------------
GEN_AI_OPERATION_NAME = _gen_ai.GEN_AI_OPERATION_NAME
GEN_AI_PROVIDER_NAME = _gen_ai.GEN_AI_PROVIDER_NAME
GEN_AI_AGENT_NAME = _gen_ai.GEN_AI_AGENT_NAME
GEN_AI_TOOL_NAME = _gen_ai.GEN_AI_TOOL_NAME
GEN_AI_REQUEST_MODEL = _gen_ai.GEN_AI_REQUEST_MODEL
GEN_AI_RESPONSE_MODEL = _gen_ai.GEN_AI_RESPONSE_MODEL
GEN_AI_USAGE_INPUT_TOKENS = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
GEN_AI_TOOL_CALL_ARGUMENTS = _gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS
GEN_AI_TOOL_CALL_RESULT = _gen_ai.GEN_AI_TOOL_CALL_RESULT
ERROR_TYPE = _error.ERROR_TYPE

# Operations that are a call to a model; a span with one of these counts as an LLM call.
LLM_OPERATIONS = frozenset(
    {
        _gen_ai.GenAiOperationNameValues.CHAT.value,
        _gen_ai.GenAiOperationNameValues.TEXT_COMPLETION.value,
        _gen_ai.GenAiOperationNameValues.GENERATE_CONTENT.value,
        _gen_ai.GenAiOperationNameValues.EMBEDDINGS.value,
    }
)
OPERATION_INVOKE_AGENT = _gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value
OPERATION_EXECUTE_TOOL = _gen_ai.GenAiOperationNameValues.EXECUTE_TOOL.value
OPERATION_CHAT = _gen_ai.GenAiOperationNameValues.CHAT.value

GEN_AI_REQUEST_STREAM = _gen_ai.GEN_AI_REQUEST_STREAM
GEN_AI_REQUEST_TEMPERATURE = _gen_ai.GEN_AI_REQUEST_TEMPERATURE
GEN_AI_REQUEST_TOP_P = _gen_ai.GEN_AI_REQUEST_TOP_P
GEN_AI_REQUEST_TOP_K = _gen_ai.GEN_AI_REQUEST_TOP_K
GEN_AI_REQUEST_MAX_TOKENS = _gen_ai.GEN_AI_REQUEST_MAX_TOKENS
GEN_AI_REQUEST_FREQUENCY_PENALTY = _gen_ai.GEN_AI_REQUEST_FREQUENCY_PENALTY
GEN_AI_REQUEST_PRESENCE_PENALTY = _gen_ai.GEN_AI_REQUEST_PRESENCE_PENALTY
GEN_AI_REQUEST_SEED = _gen_ai.GEN_AI_REQUEST_SEED
GEN_AI_REQUEST_CHOICE_COUNT = _gen_ai.GEN_AI_REQUEST_CHOICE_COUNT
GEN_AI_REQUEST_STOP_SEQUENCES = _gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES
GEN_AI_RESPONSE_ID = _gen_ai.GEN_AI_RESPONSE_ID
GEN_AI_RESPONSE_FINISH_REASONS = _gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = _gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = _gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = _gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = _gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
GEN_AI_INPUT_MESSAGES = _gen_ai.GEN_AI_INPUT_MESSAGES
GEN_AI_OUTPUT_MESSAGES = _gen_ai.GEN_AI_OUTPUT_MESSAGES
GEN_AI_SYSTEM_INSTRUCTIONS = _gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS
GEN_AI_TOKEN_TYPE = _gen_ai.GEN_AI_TOKEN_TYPE
SERVER_ADDRESS = _server.SERVER_ADDRESS
SERVER_PORT = _server.SERVER_PORT
HTTP_RESPONSE_STATUS_CODE = _http.HTTP_RESPONSE_STATUS_CODE
HTTP_RESEND_COUNT = _http.HTTP_REQUEST_RESEND_COUNT
HTTP_REQUEST_METHOD = _http.HTTP_REQUEST_METHOD
URL_PATH = _url.URL_PATH
METRIC_GEN_AI_DURATION = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION
METRIC_GEN_AI_TOKEN_USAGE = _gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
METRIC_GEN_AI_TTFC = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK

# LLM calls seen on the wire (sessionkit.instrumentation)
LLM_ATTEMPT = "sessionkit.llm.attempt"
LLM_COUNTED_IN_CHILD = "sessionkit.llm.counted_in_child"
LLM_USAGE_MISSING = "sessionkit.llm.usage_missing"
"""True on an LLM call that answered without reporting token usage (a stream not asked for it):
its tokens are unknown, not zero."""
"""On an LLM span of another tracer (or ``@llm``) whose call sessionkit also saw on the wire:
the session counts the wire-level child, not this span."""
STREAM_COMPLETED = "sessionkit.stream.completed"
GENERATOR_COMPLETED = "sessionkit.generator.completed"
"""On a decorated generator's span: whether it ran to the end (False: closed or abandoned early)."""
STREAM_EVENTS = "sessionkit.stream.events"
LLM_INPUT_MESSAGES_OMITTED = "sessionkit.llm.input_messages.omitted"
"""Older messages of the request left out of ``gen_ai.input.messages`` (by the size limit, or
with ``message_capture="new"`` because an earlier call captured them)."""

LLM_REQUEST_FINGERPRINT = "sessionkit.llm.request.fingerprint"
"""An int the same for the same request body (its length and checksums of its ends): how the
``loop`` finding tells a request sent again from a new one. Never the content."""
TOOL_CALL_FINGERPRINT = "sessionkit.tool.call.fingerprint"
"""On a decorated tool's span with content capture off: an int the same for the same arguments
(a hash, never the arguments), for the ``loop`` finding."""

# Findings (sessionkit._findings): events on the record and the turn's root
EVENT_FINDING = "sessionkit.finding"
FINDING_KIND = "sessionkit.finding.kind"
FINDING_SEVERITY = "sessionkit.finding.severity"
FINDING_MESSAGE = "sessionkit.finding.message"
FINDING_FIGURES = "sessionkit.finding.figures"  # a JSON object of the figures that show it
FINDING_EVIDENCE = "sessionkit.finding.evidence"  # the evidence spans' ids (16 hex digits each)
FINDING_TURN = "sessionkit.finding.turn"  # the turn it is about (absent: the session)
SESSION_FINDINGS = "sessionkit.session.findings"  # on the record: how many
SESSION_FINDING_KINDS = "sessionkit.session.finding_kinds"  # on the record: their kinds, once each

# Budgets (sessionkit.Budget), on the record. The token budget in the GenAI names proposed for
# agents (not yet in the installed conventions package), the rest in sessionkit's.
GEN_AI_AGENT_TOKEN_BUDGET_LIMIT = "gen_ai.agent.token_budget.limit"
GEN_AI_AGENT_TOKEN_BUDGET_CONSUMED = "gen_ai.agent.token_budget.consumed"
BUDGET_PREFIX = "sessionkit.budget."  # sessionkit.budget.<usd|tokens|llm_calls|turns|seconds>.limit / .consumed

# -- OpenInference ----------------------------------------------------------------------------
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
INPUT_VALUE = "input.value"
INPUT_MIME_TYPE = "input.mime_type"
OUTPUT_VALUE = "output.value"
LLM_MODEL_NAME = "llm.model_name"
LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL = "llm.token_count.total"
LLM_PROVIDER = "llm.provider"
LLM_COST_PROMPT = "llm.cost.prompt"  # USD
LLM_COST_COMPLETION = "llm.cost.completion"
LLM_COST_TOTAL = "llm.cost.total"
