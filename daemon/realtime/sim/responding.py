"""The simulated server's answers: responses, streamed audio, function and MCP calls.

``SimProtocol`` (protocol.py) holds the session, the input audio and the
handler table; this base class creates and streams responses on a schedule
(``next_deadline``/``advance``) and owns the output queue both use.
"""

from __future__ import annotations

import base64
import copy
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from .model import BYTES_PER_MS, MCP_TOOLS, PCM_FORMAT, Input, Response, SimError, Speaking


class Responding:
    """Response creation and streaming; the state is set up by SimProtocol.__init__."""

    session: dict[str, Any]
    synthesize: Callable[[str], bytes]
    answer: Callable[[str], str]
    function_calls: dict[str, tuple[str, dict[str, Any]]]
    realtime_factor: float
    chunk_bytes: int
    audio_out_started: bool
    _out: list[dict[str, Any]]
    _seq: int
    _tag: str
    _last_item: str | None
    _items: dict[str, dict[str, Any]]
    _item_audio: dict[str, int]
    _response: Response | None
    _input: Input
    _calls: dict[str, str]
    _approvals: dict[str, dict[str, Any]]

    def next_deadline(self) -> float | None:
        """When ``advance`` has the next audio chunk to send (None: nothing scheduled)."""
        r = self._response
        if r is None or r.speaking is None:
            return None
        s = r.speaking
        return (
            s.start + s.chunks_sent * (s.chunk_bytes / BYTES_PER_MS / 1000) / self.realtime_factor
        )

    @property
    def response_active(self) -> bool:
        return self._response is not None

    def advance(self, now: float) -> None:
        """Send the audio chunks due by ``now``; finish the response after the last one."""
        r = self._response
        while r is not None and r.speaking is not None:
            due = self.next_deadline()
            if due is None or due > now:
                return
            s = r.speaking
            self._send_chunk(r, s)
            if s.sent >= len(s.pcm):
                self._finish_speaking(r, "completed")
                self._finish_response(r, "completed")
                r = self._response

    # ================================================================ helpers

    def _emit(self, event: dict[str, Any]) -> None:
        self._seq += 1
        self._out.append({"event_id": f"event_{self._tag}{self._seq:05d}", **event})

    def _new_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}_{self._tag}{self._seq:05d}"

    def _error(
        self,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        self._emit(
            {
                "type": "error",
                "error": {
                    "type": type_,
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": event_id,
                },
            }
        )

    def _add_item(self, item: dict[str, Any], *, done: bool = True) -> None:
        """conversation.item.added (and .done) for an item in the conversation."""
        self._items[item["id"]] = item
        previous, self._last_item = self._last_item, item["id"]
        self._emit(
            {
                "type": "conversation.item.added",
                "previous_item_id": previous,
                "item": copy.deepcopy(item),
            }
        )
        if done:
            self._emit(
                {
                    "type": "conversation.item.done",
                    "previous_item_id": previous,
                    "item": copy.deepcopy(item),
                }
            )

    @staticmethod
    def _mcp_tools(tool: Mapping[str, Any]) -> list[dict[str, Any]]:
        allowed = tool.get("allowed_tools")
        if isinstance(allowed, dict):
            allowed = allowed.get("tool_names")
        if isinstance(allowed, list):
            return [t for t in MCP_TOOLS if t["name"] in allowed]
        return list(MCP_TOOLS)

    # ================================================================ responses

    def _on_response_create(self, msg: dict[str, Any], now: float) -> None:
        if self._response is not None:
            raise SimError(
                f"Conversation already has an active response in progress: {self._response.id}. "
                "Wait until the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
            )
        self._respond(now)

    def _on_response_cancel(self, msg: dict[str, Any], now: float) -> None:
        r = self._response
        wanted = msg.get("response_id")
        if r is None or (wanted and wanted != r.id):
            raise SimError(
                "Cancellation failed: no active response found", code="response_cancel_not_active"
            )
        self._cancel(r, "client_cancelled")

    def _respond(self, now: float) -> None:
        """Start the response to what came in since the last one."""
        inp, self._input = self._input, Input()
        r = self._begin_response()
        if inp.approvals:
            request_id, approve = inp.approvals[-1]
            request = self._approvals.pop(request_id)
            if approve:
                output = self._mcp_call(r, request, approval_request_id=request_id)
                self._speak(r, self.answer(f"tool {request['name']} returned: {output}"), now)
            else:
                self._speak(r, f"Okay, I will not use {request['name']}.", now)
            return
        if inp.tool_outputs:
            prompt = "; ".join(f"tool {n} returned: {o}" for n, o in inp.tool_outputs)
            self._speak(r, self.answer(prompt), now)
            return
        lower = inp.prompt.lower()
        for keyword, (name, arguments) in self.function_calls.items():
            if inp.prompt and keyword.lower() in lower:
                self._function_call(r, name, arguments)
                self._finish_response(r, "completed")
                return
        mcp = [t for t in self.session.get("tools") or [] if t.get("type") == "mcp"]
        if mcp and "mcp" in lower:
            self._mcp_turn(r, mcp[0], inp.prompt, now)
            return
        self._speak(r, self.answer(inp.prompt or "(nothing)"), now)

    def _begin_response(self) -> Response:
        r = Response(id=self._new_id("resp"))
        self._response = r
        self._emit({"type": "response.created", "response": self._response_body(r, "in_progress")})
        self._emit(
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                    {"name": "tokens", "limit": 400000, "remaining": 399000, "reset_seconds": 0.15},
                ],
            }
        )
        return r

    def _response_body(self, r: Response, status: str, reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": r.id,
            "object": "realtime.response",
            "status": status,
            "status_details": None,
            "output": copy.deepcopy(r.output) if status != "in_progress" else [],
            "conversation_id": f"conv_{self._tag}",
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {
                "output": {
                    "format": dict(PCM_FORMAT),
                    "voice": self.session["audio"]["output"]["voice"],
                }
            },
            "usage": None,
            "metadata": None,
        }
        if status == "cancelled":
            body["status_details"] = {"type": "cancelled", "reason": reason}
        elif status == "completed":
            body["status_details"] = None
        if status != "in_progress":
            # Roughly what the real server counts: ~20 audio tokens per second.
            audio_ms = (
                sum(self._item_audio.get(str(i.get("id")), 0) for i in r.output) // BYTES_PER_MS
            )
            out_tokens = audio_ms // 50 + 1
            body["usage"] = {
                "total_tokens": 100 + out_tokens,
                "input_tokens": 100,
                "output_tokens": out_tokens,
            }
        return body

    def _finish_response(self, r: Response, status: str, reason: str | None = None) -> None:
        self._emit({"type": "response.done", "response": self._response_body(r, status, reason)})
        if self._response is r:
            self._response = None

    def _cancel(self, r: Response, reason: str) -> None:
        if r.speaking is not None:
            self._finish_speaking(r, "incomplete")
        self._finish_response(r, "cancelled", reason)

    def _output_item(self, r: Response, item: dict[str, Any]) -> int:
        index = len(r.output)
        r.output.append(item)
        self._emit(
            {
                "type": "response.output_item.added",
                "response_id": r.id,
                "output_index": index,
                "item": copy.deepcopy(item),
            }
        )
        self._add_item(item, done=False)
        return index

    def _output_item_done(self, r: Response, index: int) -> None:
        item = r.output[index]
        self._emit(
            {
                "type": "response.output_item.done",
                "response_id": r.id,
                "output_index": index,
                "item": copy.deepcopy(item),
            }
        )
        self._emit({"type": "conversation.item.done", "item": copy.deepcopy(item)})

    # ---------------------------------------------------------------- spoken answers

    def _speak(self, r: Response, text: str, now: float) -> None:
        words = text.split() or ["..."]
        item: dict[str, Any] = {
            "id": self._new_id("item"),
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        index = self._output_item(r, item)
        self._emit(
            {
                "type": "response.content_part.added",
                "response_id": r.id,
                "item_id": item["id"],
                "output_index": index,
                "content_index": 0,
                "part": {"type": "audio", "transcript": ""},
            }
        )
        pcm = self.synthesize(" ".join(words))
        pcm = pcm[: len(pcm) // 2 * 2] or b"\0\0"
        self._item_audio[item["id"]] = 0
        r.speaking = Speaking(
            item=item,
            output_index=index,
            pcm=pcm,
            words=words,
            start=now,
            chunk_bytes=self.chunk_bytes,
        )
        self.advance(now)  # the first chunk goes out at once

    def _send_chunk(self, r: Response, s: Speaking) -> None:
        chunk = s.pcm[s.sent : s.sent + s.chunk_bytes]
        s.sent += len(chunk)
        s.chunks_sent += 1
        base = {
            "response_id": r.id,
            "item_id": s.item["id"],
            "output_index": s.output_index,
            "content_index": 0,
        }
        target = math.ceil(s.chunks_sent * len(s.words) / s.n_chunks)
        if target > s.words_sent:
            delta = " ".join(s.words[s.words_sent : target])
            if s.words_sent:
                delta = " " + delta
            s.words_sent = target
            self._emit({"type": "response.output_audio_transcript.delta", **base, "delta": delta})
        self._emit(
            {
                "type": "response.output_audio.delta",
                **base,
                "delta": base64.b64encode(chunk).decode("ascii"),
            }
        )
        self._item_audio[s.item["id"]] = self._item_audio.get(s.item["id"], 0) + len(chunk)
        self.audio_out_started = True

    def _finish_speaking(self, r: Response, status: str) -> None:
        s = r.speaking
        assert s is not None
        r.speaking = None
        transcript = s.transcript
        base = {
            "response_id": r.id,
            "item_id": s.item["id"],
            "output_index": s.output_index,
            "content_index": 0,
        }
        self._emit({"type": "response.output_audio.done", **base})
        self._emit(
            {"type": "response.output_audio_transcript.done", **base, "transcript": transcript}
        )
        self._emit(
            {
                "type": "response.content_part.done",
                **base,
                "part": {"type": "audio", "transcript": transcript},
            }
        )
        s.item["status"] = status
        s.item["content"] = [{"type": "output_audio", "transcript": transcript}]
        self._output_item_done(r, s.output_index)

    # ---------------------------------------------------------------- function calls

    def _function_call(self, r: Response, name: str, arguments: dict[str, Any]) -> None:
        call_id = self._new_id("call")
        self._calls[call_id] = name
        args = json.dumps(arguments)
        item = {
            "id": self._new_id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        index = self._output_item(r, item)
        base = {
            "response_id": r.id,
            "item_id": item["id"],
            "output_index": index,
            "call_id": call_id,
        }
        self._emit({"type": "response.function_call_arguments.delta", **base, "delta": args})
        self._emit(
            {
                "type": "response.function_call_arguments.done",
                **base,
                "name": name,
                "arguments": args,
            }
        )
        item.update(status="completed", arguments=args)
        self._output_item_done(r, index)

    # ---------------------------------------------------------------- MCP

    def _mcp_turn(self, r: Response, server: dict[str, Any], prompt: str, now: float) -> None:
        tools = self._mcp_tools(server)
        if not tools:
            self._speak(r, "That MCP server offers no tools I may use.", now)
            return
        tool = tools[0]["name"]
        args = {"query": prompt} if tool == "search" else {"a": 2, "b": 3}
        request = {
            "id": self._new_id("mcpr"),
            "type": "mcp_approval_request",
            "server_label": str(server.get("server_label")),
            "name": tool,
            "arguments": json.dumps(args),
        }
        if self._needs_approval(server, tool):
            self._approvals[request["id"]] = request
            index = self._output_item(r, request)
            self._output_item_done(r, index)
            self._finish_response(r, "completed")
            return
        output = self._mcp_call(r, request, approval_request_id=None)
        self._speak(r, self.answer(f"tool {tool} returned: {output}"), now)

    @staticmethod
    def _needs_approval(server: Mapping[str, Any], tool: str) -> bool:
        policy = server.get("require_approval")
        if policy is None or policy == "always":
            return True
        if policy == "never":
            return False
        if isinstance(policy, dict):
            never = (policy.get("never") or {}).get("tool_names") or []
            return tool not in never
        return True

    def _mcp_call(
        self, r: Response, request: dict[str, Any], *, approval_request_id: str | None
    ) -> str:
        """An mcp_call output item, run at once; returns its output (or error text)."""
        args = str(request["arguments"])
        item: dict[str, Any] = {
            "id": self._new_id("mcp"),
            "type": "mcp_call",
            "server_label": request["server_label"],
            "name": request["name"],
            "arguments": "",
        }
        if approval_request_id:
            item["approval_request_id"] = approval_request_id
        index = self._output_item(r, item)
        base = {"response_id": r.id, "item_id": item["id"], "output_index": index}
        self._emit({"type": "response.mcp_call_arguments.delta", **base, "delta": args})
        self._emit({"type": "response.mcp_call_arguments.done", **base, "arguments": args})
        self._emit(
            {"type": "response.mcp_call.in_progress", "item_id": item["id"], "output_index": index}
        )
        item["arguments"] = args
        parsed = json.loads(args)
        if "fail" in args.lower():
            message = f"{request['name']} failed (simulated)"
            item["error"] = {"type": "tool_execution_error", "message": message}
            self._emit(
                {"type": "response.mcp_call.failed", "item_id": item["id"], "output_index": index}
            )
            self._output_item_done(r, index)
            return message
        if request["name"] == "add":
            output = str(parsed.get("a", 0) + parsed.get("b", 0))
        else:
            output = f"Simulated result for {parsed.get('query', '')!r}."
        item["output"] = output
        self._emit(
            {"type": "response.mcp_call.completed", "item_id": item["id"], "output_index": index}
        )
        self._output_item_done(r, index)
        return output
