"""Nested objects of the protocol, in the canonical (GA) shape.

Session configuration (realtime and transcription), audio formats, turn detection,
tools, conversation items and their content, responses, status details, usage, rate
limits and errors. Field names and types follow ``shared/protocol.md``; the official
``openai`` package's ``types/realtime`` models break ties. Every model keeps unknown
fields, and unions over ``type`` fall back to a loose model for types we do not know,
so a new server feature never breaks parsing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from ._base import WireModel

__all__ = [
    "AudioConfig",
    "AudioFormat",
    "AudioInputConfig",
    "AudioOutputConfig",
    "ContentPart",
    "ConversationInfo",
    "ErrorDetail",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "InputAudioTranscription",
    "InputTokenDetails",
    "Item",
    "ItemReference",
    "LogProb",
    "McpApprovalRequestItem",
    "McpApprovalResponseItem",
    "McpCallItem",
    "McpListToolsItem",
    "MessageItem",
    "NoiseReduction",
    "OtherTool",
    "OutputTokenDetails",
    "PcmFormat",
    "PcmaFormat",
    "PcmuFormat",
    "RateLimit",
    "RealtimeSession",
    "Response",
    "ResponseAudio",
    "ResponseAudioOutput",
    "ResponseCreateParams",
    "SemanticVad",
    "ServerVad",
    "Session",
    "StatusDetails",
    "Tool",
    "ToolChoice",
    "ToolChoiceFunction",
    "ToolChoiceMcp",
    "TranscriptionAudio",
    "TranscriptionAudioInput",
    "TranscriptionSession",
    "TranscriptionUsage",
    "TurnDetection",
    "UnknownAudioFormat",
    "UnknownItem",
    "UnknownTurnDetection",
    "Usage",
]

Voice = str  # "alloy", "marin", …; custom voices are objects, kept loose below
MaxTokens = int | Literal["inf"]


def _tag_by_type(known: frozenset[str], fallback: str = "unknown") -> Any:
    """A callable discriminator: the ``type`` value if known, else ``fallback``."""

    def pick(value: Any) -> str:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return kind if isinstance(kind, str) and kind in known else fallback

    return Discriminator(pick)


# --- audio formats -----------------------------------------------------------------


class PcmFormat(WireModel):
    """``{"type": "audio/pcm", "rate": 24000}``: 16-bit little-endian mono PCM."""

    type: Literal["audio/pcm"] = "audio/pcm"
    rate: int | None = 24_000


class PcmuFormat(WireModel):
    """``{"type": "audio/pcmu"}``: G.711 µ-law at 8 kHz."""

    type: Literal["audio/pcmu"] = "audio/pcmu"


class PcmaFormat(WireModel):
    """``{"type": "audio/pcma"}``: G.711 A-law at 8 kHz."""

    type: Literal["audio/pcma"] = "audio/pcma"


class UnknownAudioFormat(WireModel):
    """An audio format type this library does not know (kept as sent)."""

    type: str


AudioFormat = Annotated[
    Annotated[PcmFormat, Tag("audio/pcm")]
    | Annotated[PcmuFormat, Tag("audio/pcmu")]
    | Annotated[PcmaFormat, Tag("audio/pcma")]
    | Annotated[UnknownAudioFormat, Tag("unknown")],
    _tag_by_type(frozenset({"audio/pcm", "audio/pcmu", "audio/pcma"})),
]


# --- turn detection ----------------------------------------------------------------


class ServerVad(WireModel):
    """Energy-based server VAD settings (``audio.input.turn_detection``)."""

    type: Literal["server_vad"] = "server_vad"
    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    idle_timeout_ms: int | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


class SemanticVad(WireModel):
    """Semantic VAD settings: waits for the user to finish their thought."""

    type: Literal["semantic_vad"] = "semantic_vad"
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


class UnknownTurnDetection(WireModel):
    """A turn-detection type this library does not know."""

    type: str


TurnDetection = Annotated[
    Annotated[ServerVad, Tag("server_vad")]
    | Annotated[SemanticVad, Tag("semantic_vad")]
    | Annotated[UnknownTurnDetection, Tag("unknown")],
    _tag_by_type(frozenset({"server_vad", "semantic_vad"})),
]


# --- session -----------------------------------------------------------------------


class InputAudioTranscription(WireModel):
    """``audio.input.transcription``: the ASR model run on user audio."""

    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class NoiseReduction(WireModel):
    """``audio.input.noise_reduction``."""

    type: Literal["near_field", "far_field"] | str | None = None


class AudioInputConfig(WireModel):
    """``session.audio.input``."""

    format: AudioFormat | None = None
    transcription: InputAudioTranscription | None = None
    noise_reduction: NoiseReduction | None = None
    turn_detection: TurnDetection | None = None


class AudioOutputConfig(WireModel):
    """``session.audio.output``."""

    format: AudioFormat | None = None
    voice: Voice | dict[str, Any] | None = None
    speed: float | None = None


class AudioConfig(WireModel):
    """``session.audio``."""

    input: AudioInputConfig | None = None
    output: AudioOutputConfig | None = None


class FunctionTool(WireModel):
    """A function the model may call; ``parameters`` is a JSON schema."""

    type: Literal["function"] = "function"
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None


class OtherTool(WireModel):
    """Any other tool (``mcp`` and future kinds), kept as sent."""

    type: str


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[OtherTool, Tag("unknown")],
    _tag_by_type(frozenset({"function"})),
]


class ToolChoiceFunction(WireModel):
    """Force a specific function: ``{"type": "function", "name": …}``."""

    type: Literal["function"] = "function"
    name: str


class ToolChoiceMcp(WireModel):
    """Force an MCP server's tool."""

    type: Literal["mcp"] = "mcp"
    server_label: str
    name: str | None = None


ToolChoice = str | ToolChoiceFunction | ToolChoiceMcp


class RealtimeSession(WireModel):
    """A speech-to-speech session (``session.type == "realtime"``).

    Every field is optional: ``session.update`` sends a partial object and the server
    answers with the full state in ``session.updated``.
    """

    type: Literal["realtime"] | None = "realtime"
    object: str | None = None
    id: str | None = None
    model: str | None = None
    output_modalities: list[Literal["text", "audio"]] | None = None
    instructions: str | None = None
    tools: list[Tool] | None = Field(default=None, fail_fast=True)
    tool_choice: ToolChoice | None = None
    max_output_tokens: MaxTokens | None = None
    tracing: Literal["auto"] | dict[str, Any] | None = None
    truncation: str | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    expires_at: int | None = None
    audio: AudioConfig | None = None
    include: list[str] | None = None
    reasoning: dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None


class TranscriptionAudioInput(WireModel):
    """``session.audio.input`` of a transcription session."""

    format: AudioFormat | None = None
    transcription: InputAudioTranscription | None = None
    noise_reduction: NoiseReduction | None = None
    turn_detection: TurnDetection | None = None


class TranscriptionAudio(WireModel):
    """``session.audio`` of a transcription session (input only)."""

    input: TranscriptionAudioInput | None = None


class TranscriptionSession(WireModel):
    """A transcription-only session (``session.type == "transcription"``)."""

    type: Literal["transcription"] = "transcription"
    object: str | None = None
    id: str | None = None
    expires_at: int | None = None
    audio: TranscriptionAudio | None = None
    include: list[str] | None = None


def _session_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "transcription" if kind == "transcription" else "realtime"


Session = Annotated[
    Annotated[RealtimeSession, Tag("realtime")]
    | Annotated[TranscriptionSession, Tag("transcription")],
    Discriminator(_session_tag),
]


# --- conversation items ------------------------------------------------------------


class ContentPart(WireModel):
    """One content part of a message item or of ``response.content_part.*``.

    ``type`` is ``input_text``, ``input_audio``, ``input_image``, ``output_text``,
    ``output_audio`` in items; ``text`` / ``audio`` in ``response.content_part.*``
    events (both dialects); ``item_reference`` in beta inputs.
    """

    type: str | None = None
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None
    image_url: str | None = None
    detail: Literal["auto", "low", "high"] | None = None
    id: str | None = None


ItemStatus = Literal["completed", "incomplete", "in_progress"]


class MessageItem(WireModel):
    """A ``message`` item from the system, the user or the assistant.

    ``phase`` (gpt-realtime-2.x assistant messages, protocol.md §16.2): ``"commentary"``
    for a preamble said while tools run, ``"final_answer"`` for the answer; absent for
    models without phases (and not in the official SDK's types).
    """

    type: Literal["message"] = "message"
    id: str | None = None
    object: str | None = None
    status: ItemStatus | None = None
    role: Literal["system", "user", "assistant"]
    content: list[ContentPart] = Field(default_factory=list, fail_fast=True)
    phase: str | None = None


class FunctionCallItem(WireModel):
    """A ``function_call`` item: the model asks for a tool call."""

    type: Literal["function_call"] = "function_call"
    id: str | None = None
    object: str | None = None
    status: ItemStatus | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None


class FunctionCallOutputItem(WireModel):
    """A ``function_call_output`` item: the result of a tool call, as a string."""

    type: Literal["function_call_output"] = "function_call_output"
    id: str | None = None
    object: str | None = None
    status: ItemStatus | None = None
    call_id: str
    output: str


class McpCallItem(WireModel):
    """An ``mcp_call`` item."""

    type: Literal["mcp_call"] = "mcp_call"
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    server_label: str | None = None
    output: str | None = None
    error: dict[str, Any] | None = None
    approval_request_id: str | None = None


class McpListToolsItem(WireModel):
    """An ``mcp_list_tools`` item."""

    type: Literal["mcp_list_tools"] = "mcp_list_tools"
    id: str | None = None
    server_label: str | None = None
    tools: list[dict[str, Any]] | None = None


class McpApprovalRequestItem(WireModel):
    """An ``mcp_approval_request`` item."""

    type: Literal["mcp_approval_request"] = "mcp_approval_request"
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    server_label: str | None = None


class McpApprovalResponseItem(WireModel):
    """An ``mcp_approval_response`` item."""

    type: Literal["mcp_approval_response"] = "mcp_approval_response"
    id: str | None = None
    approval_request_id: str | None = None
    approve: bool | None = None
    reason: str | None = None


class ItemReference(WireModel):
    """``{"type": "item_reference", "id": …}`` in ``response.create.response.input``."""

    type: Literal["item_reference"] = "item_reference"
    id: str


class UnknownItem(WireModel):
    """An item type this library does not know (kept as sent)."""

    type: str | None = None
    id: str | None = None


_ITEM_TYPES = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "item_reference",
    }
)

Item = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[McpCallItem, Tag("mcp_call")]
    | Annotated[McpListToolsItem, Tag("mcp_list_tools")]
    | Annotated[McpApprovalRequestItem, Tag("mcp_approval_request")]
    | Annotated[McpApprovalResponseItem, Tag("mcp_approval_response")]
    | Annotated[ItemReference, Tag("item_reference")]
    | Annotated[UnknownItem, Tag("unknown")],
    _tag_by_type(_ITEM_TYPES),
]


# --- responses ---------------------------------------------------------------------


class ErrorDetail(WireModel):
    """The ``error`` object of an ``error`` event or of a failed response."""

    type: str | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None
    event_id: str | None = None


class StatusDetails(WireModel):
    """Why a response ended as it did (``null`` when completed)."""

    type: Literal["completed", "cancelled", "failed", "incomplete"] | str | None = None
    reason: str | None = None
    error: ErrorDetail | None = None


class CachedTokenDetails(WireModel):
    """Cached input tokens per modality."""

    text_tokens: int | None = None
    audio_tokens: int | None = None
    image_tokens: int | None = None


class InputTokenDetails(WireModel):
    """Input tokens per modality."""

    text_tokens: int | None = None
    audio_tokens: int | None = None
    image_tokens: int | None = None
    cached_tokens: int | None = None
    cached_tokens_details: CachedTokenDetails | None = None


class OutputTokenDetails(WireModel):
    """Output tokens per modality (``reasoning_tokens``: gpt-realtime-2.x, §16.3)."""

    text_tokens: int | None = None
    audio_tokens: int | None = None
    reasoning_tokens: int | None = None


class Usage(WireModel):
    """Token usage of one response (in ``response.done``)."""

    total_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    input_token_details: InputTokenDetails | None = None
    output_token_details: OutputTokenDetails | None = None


class ResponseAudioOutput(WireModel):
    """``response.audio.output``: the format and voice a response speaks with."""

    format: AudioFormat | None = None
    voice: Voice | dict[str, Any] | None = None


class ResponseAudio(WireModel):
    """``response.audio``."""

    output: ResponseAudioOutput | None = None


class Response(WireModel):
    """The response object of ``response.created`` / ``response.done``."""

    object: str | None = None
    id: str | None = None
    status: Literal["in_progress", "completed", "cancelled", "failed", "incomplete"] | None = None
    status_details: StatusDetails | None = None
    # fail_fast: a list of thousands of bad elements stops at the first (one error, not
    # one per element: 8,192 malformed items took 15-26 ms to describe).
    output: list[Item] | None = Field(default=None, fail_fast=True)
    conversation_id: str | None = None
    output_modalities: list[Literal["text", "audio"]] | None = None
    max_output_tokens: MaxTokens | None = None
    audio: ResponseAudio | None = None
    usage: Usage | None = None
    metadata: dict[str, str] | None = None


class ResponseCreateParams(WireModel):
    """Per-response overrides for ``response.create`` (``response`` field)."""

    output_modalities: list[Literal["text", "audio"]] | None = None
    instructions: str | None = None
    audio: ResponseAudio | None = None
    tools: list[Tool] | None = Field(default=None, fail_fast=True)
    tool_choice: ToolChoice | None = None
    max_output_tokens: MaxTokens | None = None
    conversation: str | None = None
    metadata: dict[str, str] | None = None
    input: list[Item] | None = None
    prompt: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None


class RateLimit(WireModel):
    """One entry of ``rate_limits.updated``."""

    name: str | None = None
    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None


class LogProb(WireModel):
    """A token log-probability of an input transcription."""

    token: str | None = None
    logprob: float | None = None
    bytes: list[int] | None = None


class TranscriptionUsage(WireModel):
    """Usage of an input transcription: ``tokens`` or ``duration`` kind."""

    type: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_token_details: dict[str, Any] | None = None
    seconds: float | None = None


class ConversationInfo(WireModel):
    """The ``conversation`` object of ``conversation.created``."""

    id: str | None = None
    object: str | None = None
