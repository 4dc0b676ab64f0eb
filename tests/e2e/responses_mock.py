"""A mock upstream for the Responses API end-to-end tests, speaking two wire
formats on one port:

* ``POST /v1/responses`` like OpenAI's Responses API (JSON, or its event stream);
* ``POST /v1/messages`` like Anthropic's Messages API (JSON, or its SSE events).

Both answer text ``"<prefix>" + <last user text>``, or a ``get_weather`` tool
call when tools are offered and the conversation does not end with a tool
result. Every request is recorded.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENAI_PREFIX = "openai says: "
ANTHROPIC_PREFIX = "claude says: "
TOOL_ARGS = {"city": "Paris"}


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ResponsesMock:
    server: ThreadingHTTPServer
    thread: threading.Thread
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def calls(self, path_suffix: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith(path_suffix)]

    def next_id(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _openai_last_user(body: dict) -> tuple[str, bool]:
    """(last user text, whether the input ends with a function call output)."""
    items = body.get("input")
    if isinstance(items, str):
        return items, False
    items = items or []
    ends_with_output = bool(items) and items[-1].get("type") == "function_call_output"
    for item in reversed(items):
        if item.get("role") == "user":
            return _text_of(item.get("content")), ends_with_output
    return "", ends_with_output


def _anthropic_last_user(body: dict) -> tuple[str, bool]:
    msgs = body.get("messages") or []
    last = msgs[-1] if msgs else {}
    content = last.get("content")
    ends_with_result = isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )
    for m in reversed(msgs):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list) and any(b.get("type") == "tool_result" for b in c if isinstance(b, dict)):
                continue
            return _text_of(c), ends_with_result
    return "", ends_with_result


def _openai_response(n: int, model: str, body: dict) -> dict:
    text, ends_with_output = _openai_last_user(body)
    if body.get("tools") and not ends_with_output:
        item = {"id": f"fc_up{n}", "type": "function_call", "status": "completed",
                "arguments": json.dumps(TOOL_ARGS), "call_id": f"call_up{n}", "name": "get_weather"}
    else:
        reply = OPENAI_PREFIX + (text or "the weather is sunny")
        item = {"id": f"msg_up{n}", "type": "message", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": reply}]}
    return {
        "id": f"resp_upstream{n}", "object": "response", "created_at": 1_700_000_000, "status": "completed",
        "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
        "max_output_tokens": None, "model": model, "output": [item], "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"), "reasoning": {"effort": None, "summary": None},
        "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
        "tools": body.get("tools") or [], "top_p": 1.0, "truncation": "disabled",
        "usage": {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 17},
        "user": None, "metadata": {},
    }


def _openai_events(resp: dict) -> list[dict]:
    pending = dict(resp, status="in_progress", output=[], usage=None)
    item = resp["output"][0]
    evs: list[dict] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
    ]
    if item["type"] == "function_call":
        evs.append({"type": "response.output_item.added", "output_index": 0,
                    "item": dict(item, arguments="", status="in_progress")})
        evs.append({"type": "response.function_call_arguments.delta", "item_id": item["id"], "output_index": 0,
                    "delta": item["arguments"]})
        evs.append({"type": "response.function_call_arguments.done", "item_id": item["id"], "output_index": 0,
                    "arguments": item["arguments"]})
    else:
        text = item["content"][0]["text"]
        evs.append({"type": "response.output_item.added", "output_index": 0,
                    "item": dict(item, status="in_progress", content=[])})
        evs.append({"type": "response.content_part.added", "item_id": item["id"], "output_index": 0,
                    "content_index": 0, "part": {"type": "output_text", "annotations": [], "text": ""}})
        for i in range(0, len(text), 6):
            evs.append({"type": "response.output_text.delta", "item_id": item["id"], "output_index": 0,
                        "content_index": 0, "delta": text[i : i + 6], "logprobs": []})
        evs.append({"type": "response.output_text.done", "item_id": item["id"], "output_index": 0,
                    "content_index": 0, "text": text, "logprobs": []})
        evs.append({"type": "response.content_part.done", "item_id": item["id"], "output_index": 0,
                    "content_index": 0, "part": item["content"][0]})
    evs.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    evs.append({"type": "response.completed", "response": resp})
    for n, e in enumerate(evs):
        e["sequence_number"] = n
    return evs


def _anthropic_message(n: int, model: str, body: dict) -> dict:
    text, ends_with_result = _anthropic_last_user(body)
    if body.get("tools") and not ends_with_result:
        content = [{"type": "tool_use", "id": f"toolu_up{n}", "name": "get_weather", "input": TOOL_ARGS}]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": ANTHROPIC_PREFIX + (text or "the weather is sunny")}]
        stop = "end_turn"
    return {"id": f"msg_anthropic{n}", "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 21, "output_tokens": 7, "cache_read_input_tokens": 0,
                      "cache_creation_input_tokens": 0}}


def _anthropic_events(msg: dict) -> list[tuple[str, dict]]:
    start = dict(msg, content=[], stop_reason=None, usage={"input_tokens": 21, "output_tokens": 1})
    evs: list[tuple[str, dict]] = [("message_start", {"type": "message_start", "message": start})]
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            evs.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                "content_block": {"type": "text", "text": ""}}))
            t = block["text"]
            for j in range(0, len(t), 6):
                evs.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                    "delta": {"type": "text_delta", "text": t[j : j + 6]}}))
        else:
            evs.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                "content_block": dict(block, input={})}))
            evs.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                "delta": {"type": "input_json_delta",
                                                          "partial_json": json.dumps(block["input"])}}))
        evs.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    evs.append(("message_delta", {"type": "message_delta",
                                  "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
                                  "usage": {"output_tokens": 7}}))
    evs.append(("message_stop", {"type": "message_stop"}))
    return evs


def _make_handler(ref: list):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def _json(self, status: int, obj: Any) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _sse(self, frames: list[tuple[str, dict]]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.end_headers()
            for name, data in frames:
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

        def do_POST(self):  # noqa: N802
            mock: ResponsesMock = ref[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            with mock.lock:
                mock.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            n = mock.next_id()
            if self.path.endswith("/v1/responses"):
                resp = _openai_response(n, body.get("model", ""), body)
                if body.get("stream"):
                    self._sse([(e["type"], e) for e in _openai_events(resp)])
                else:
                    self._json(200, resp)
            elif self.path.endswith("/v1/messages"):
                msg = _anthropic_message(n, body.get("model", ""), body)
                if body.get("stream"):
                    self._sse(_anthropic_events(msg))
                else:
                    self._json(200, msg)
            else:
                self._json(404, {"error": {"message": f"Unknown path {self.path}", "type": "invalid_request_error",
                                           "param": None, "code": None}})

    return Handler


def start_responses_mock() -> ResponsesMock:
    ref: list = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(ref))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="mock-responses-upstream", daemon=True)
    mock = ResponsesMock(server=server, thread=thread)
    ref.append(mock)
    thread.start()
    return mock
