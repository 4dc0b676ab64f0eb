"""A tiny in-process mock of the OpenAI API, used as a real upstream for ferrolite.

It speaks OpenAI's wire format for POST /v1/chat/completions (JSON and SSE),
and records every request (path, headers, parsed body) so tests can assert
what the gateway actually sent upstream.

Behaviour is selected by the upstream model id in the request body:
  * ``rate-limited`` -> 429 with OpenAI's error body and ``retry-after: 0``
  * ``missing``      -> 404 with OpenAI's ``model_not_found`` error body
  * anything else    -> 200; the reply is ``UPSTREAM_PREFIX + <last user message>``
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import mock_anthropic

UPSTREAM_PREFIX = "upstream echo: "
RATE_LIMIT_MESSAGE = "Rate limit reached for gpt-upstream in organization org-mock on requests per min (RPM): Limit 3, Used 3."
NOT_FOUND_MESSAGE = "The model `missing` does not exist or you do not have access to it."


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any


@dataclass
class MockUpstream:
    server: ThreadingHTTPServer
    thread: threading.Thread
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def record(self, req: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(req)

    def find(self, marker: str) -> list[RecordedRequest]:
        """Requests whose JSON body contains ``marker`` anywhere."""
        with self.lock:
            return [r for r in self.requests if marker in json.dumps(r.body)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _last_user_text(body: dict) -> str:
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


# Upstream model id that answers with a call to the request's first tool
# (arguments TOOL_CALL_ARGS), and after a tool result with that result's text.
TOOL_CALLER_MODEL = "tool-caller"
TOOL_CALL_ARGS = {"city": "Paris"}


def _tool_caller_reply(body: dict) -> dict:
    msgs = body.get("messages") or []
    last = msgs[-1] if msgs else {}
    if last.get("role") == "tool":
        message = {"role": "assistant", "content": f"tool said: {last.get('content')}"}
        finish = "stop"
    else:
        name = ((body.get("tools") or [{}])[0].get("function") or {}).get("name", "tool")
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_mock_1", "type": "function", "function": {"name": name, "arguments": json.dumps(TOOL_CALL_ARGS)}}
            ],
        }
        finish = "tool_calls"
    return {
        "id": "chatcmpl-mocktool",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }


def _error_body(message: str, type_: str, code: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


def _make_handler(mock_ref: list):
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0 semantics: one request per connection, body ends at close.
        # That keeps SSE simple and is a valid wire format for any client.
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, status: int, body: bytes, extra_headers: dict[str, str] | None = None):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-request-id", "req_mock_upstream")
            for k, v in (extra_headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            mock: MockUpstream = mock_ref[0]
            mock.record(RecordedRequest("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, None))
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, json.dumps({"object": "list", "data": []}).encode())
            else:
                self._send(404, _error_body("Unknown path", "invalid_request_error", None))

        def do_POST(self):  # noqa: N802
            mock: MockUpstream = mock_ref[0]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"null")
            except json.JSONDecodeError:
                body = {"__unparsed__": raw.decode("utf-8", "replace")}
            mock.record(RecordedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))

            # Anthropic's Messages API, and chat for `*dialect*` models: mock_anthropic.py.
            if self.path.endswith(("/v1/messages", "/v1/messages/count_tokens")):
                mock_anthropic.handle_messages(self, body)
                return
            if self.path.endswith("/chat/completions") and isinstance(body, dict) and "dialect" in str(body.get("model", "")):
                mock_anthropic.handle_chat(self, body)
                return
            if not self.path.endswith("/chat/completions"):
                self._send(404, _error_body(f"Unknown path {self.path}", "invalid_request_error", None))
                return
            if not isinstance(body, dict):
                self._send(400, _error_body("body must be a JSON object", "invalid_request_error", None))
                return

            model = body.get("model")
            if model == "rate-limited":
                self._send(
                    429,
                    _error_body(RATE_LIMIT_MESSAGE, "requests", "rate_limit_exceeded"),
                    {"retry-after": "0", "x-ratelimit-remaining-requests": "0"},
                )
                return
            if model == "missing":
                self._send(404, _error_body(NOT_FOUND_MESSAGE, "invalid_request_error", "model_not_found"))
                return

            if model == TOOL_CALLER_MODEL and not body.get("stream"):
                self._send(200, json.dumps(_tool_caller_reply(body)).encode())
                return

            text = UPSTREAM_PREFIX + _last_user_text(body)
            prompt_tokens, completion_tokens = 11, len(text.split())
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            cid, created = "chatcmpl-mockupstream123", int(time.time())

            if not body.get("stream"):
                resp = {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_mock",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
                self._send(200, json.dumps(resp).encode())
                return

            # --- SSE stream, exactly like api.openai.com ---
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("x-request-id", "req_mock_upstream")
            self.end_headers()
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

            def chunk(choices, usage_val=None, with_usage_field=False):
                c = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_mock",
                    "choices": choices,
                }
                if with_usage_field:
                    c["usage"] = usage_val
                self.wfile.write(b"data: " + json.dumps(c).encode() + b"\n\n")
                self.wfile.flush()

            pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
            chunk(
                [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}],
                None,
                include_usage,
            )
            for p in pieces:
                chunk([{"index": 0, "delta": {"content": p}, "logprobs": None, "finish_reason": None}], None, include_usage)
            chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], None, include_usage)
            if include_usage:
                chunk([], usage, True)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


def start_mock_upstream() -> MockUpstream:
    ref: list = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(ref))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="mock-openai-upstream", daemon=True)
    mock = MockUpstream(server=server, thread=thread)
    ref.append(mock)
    thread.start()
    return mock
