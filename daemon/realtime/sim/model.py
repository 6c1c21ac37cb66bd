"""The simulated server's data: defaults, the fixed MCP tools, per-response state."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.vocab import PCM_RATE

BYTES_PER_MS = PCM_RATE * 2 // 1000  # PCM16 mono
MIN_COMMIT_MS = 100  # the real server refuses to commit less
PCM_FORMAT = {"type": "audio/pcm", "rate": PCM_RATE}
SEMANTIC_SILENCE_MS = {"low": 1000, "medium": 500, "auto": 500, "high": 250}

# A fixed tool list for every MCP server (filtered by allowed_tools).
MCP_TOOLS: tuple[dict[str, Any], ...] = (
    {
        "name": "search",
        "description": "Search the simulated knowledge base.",
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
    {
        "name": "add",
        "description": "Add two numbers.",
        "input_schema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
)


def vad_defaults(kind: str) -> dict[str, Any]:
    if kind == "server_vad":
        return {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "idle_timeout_ms": None,
            "create_response": True,
            "interrupt_response": True,
        }
    return {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    }


def default_session(session_id: str, model: str) -> dict[str, Any]:
    """The session the real server starts with (as sent in session.created)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "You are a helpful voice assistant (simulated).",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "truncation": "auto",
        "audio": {
            "input": {
                "format": dict(PCM_FORMAT),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": vad_defaults("server_vad"),
            },
            "output": {"format": dict(PCM_FORMAT), "voice": "marin", "speed": 1.0},
        },
    }


def merge(base: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


class SimError(Exception):
    """A client event the real server would answer with an ``error`` event."""

    def __init__(self, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


@dataclass
class Speaking:
    """The assistant audio item being streamed."""

    item: dict[str, Any]
    output_index: int
    pcm: bytes
    words: list[str]
    start: float
    chunk_bytes: int
    sent: int = 0
    chunks_sent: int = 0
    words_sent: int = 0

    @property
    def n_chunks(self) -> int:
        return max(1, math.ceil(len(self.pcm) / self.chunk_bytes))

    @property
    def transcript(self) -> str:
        return " ".join(self.words[: self.words_sent])


@dataclass
class Response:
    id: str
    output: list[dict[str, Any]] = field(default_factory=list)
    speaking: Speaking | None = None


@dataclass
class Input:
    """What the next response answers: the latest user turn or tool results."""

    prompt: str = ""
    tool_outputs: list[tuple[str, str]] = field(default_factory=list)  # (name, output)
    approvals: list[tuple[str, bool]] = field(default_factory=list)  # (request id, approve)
    fresh: bool = False  # something arrived since the last response
