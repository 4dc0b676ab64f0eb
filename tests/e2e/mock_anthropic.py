"""Mock upstream behaviour for the Anthropic dialect tests, plugged into
``mock_upstream.py``'s HTTP handler.

* ``POST /v1/messages`` — Anthropic's Messages API (JSON and typed SSE events):
  a ``tool_use`` answer when the request offers tools and its last user turn
  carries no ``tool_result``; otherwise text (``ANTHROPIC_PREFIX`` + the last
  user text, or ``tool result seen: …``). With ``thinking`` enabled a thinking
  block with a signature comes first.
* ``POST /v1/messages/count_tokens`` — ``{"input_tokens": COUNTED_TOKENS}``.
* chat completions for upstream models whose id contains ``dialect`` — the same
  behaviour in OpenAI's format: ``tool_calls`` when tools are offered and the
  last message is not a tool result, ``reasoning_content`` when the request
  has ``reasoning_effort``.
"""

from __future__ import annotations

import json
import time
from typing import Any

ANTHROPIC_PREFIX = "anthropic echo: "
CHAT_PREFIX = "chat echo: "
COUNTED_TOKENS = 777
SIGNATURE = "EqQBCkYIBxgCKkBmockSignature=="
THINKING_TEXT = "Let me think about this."


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _tool_results(content: Any) -> list[dict]:
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def _result_text(block: dict) -> str:
    c = block.get("content")
    return c if isinstance(c, str) else _text_of(c)


def _send_events(handler, events: list[tuple[str, dict]]) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("request-id", "req_mock_anthropic")
    handler.end_headers()
    for name, data in events:
        handler.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        handler.wfile.flush()


def handle_messages(handler, body: Any) -> None:
    """Answer ``POST /v1/messages`` or ``/v1/messages/count_tokens``."""
    err = lambda status, kind, msg: handler._send(  # noqa: E731
        status, json.dumps({"type": "error", "error": {"type": kind, "message": msg}}).encode()
    )
    if "x-api-key" not in {k.lower() for k in handler.headers.keys()}:
        return err(401, "authentication_error", "x-api-key header is required")
    if not isinstance(body, dict) or "model" not in body or "messages" not in body:
        return err(400, "invalid_request_error", "model and messages are required")
    if handler.path.endswith("/count_tokens"):
        return handler._send(200, json.dumps({"input_tokens": COUNTED_TOKENS}).encode())
    if "max_tokens" not in body:
        return err(400, "invalid_request_error", "max_tokens: Field required")

    last = body["messages"][-1] if body["messages"] else {}
    results = _tool_results(last.get("content"))
    blocks: list[dict] = []
    thinking = (body.get("thinking") or {}).get("type") == "enabled"
    if thinking:
        blocks.append({"type": "thinking", "thinking": THINKING_TEXT, "signature": SIGNATURE})
    if results:
        blocks.append({"type": "text", "text": "tool result seen: " + _result_text(results[0])})
        stop = "end_turn"
    elif body.get("tools"):
        tool = body["tools"][0]
        blocks.append({"type": "tool_use", "id": "toolu_01MockE2E", "name": tool["name"], "input": {"city": "Paris"}})
        stop = "tool_use"
    else:
        blocks.append({"type": "text", "text": ANTHROPIC_PREFIX + _text_of(last.get("content"))})
        stop = "end_turn"
    usage = {"input_tokens": 21, "output_tokens": 9, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 3}
    msg = {
        "id": "msg_01MockE2E",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    if not body.get("stream"):
        return handler._send(200, json.dumps(msg).encode())

    start = dict(msg, content=[], stop_reason=None, usage=dict(usage, output_tokens=1))
    events: list[tuple[str, dict]] = [("message_start", {"type": "message_start", "message": start}), ("ping", {"type": "ping"})]
    for i, b in enumerate(blocks):
        if b["type"] == "thinking":
            events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "thinking_delta", "thinking": b["thinking"]}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "signature_delta", "signature": b["signature"]}}))
        elif b["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}))
            t = b["text"]
            for j in range(0, len(t), 6):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": t[j : j + 6]}}))
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": dict(b, input={})}))
            js = json.dumps(b["input"])
            for j in range(0, len(js), 5):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": js[j : j + 5]}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    _send_events(handler, events)


def handle_chat(handler, body: dict) -> None:
    """Chat completions for upstream models whose id contains ``dialect``."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    reasoning = f"mock reasoning (effort={body['reasoning_effort']})" if body.get("reasoning_effort") else None
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if last.get("role") == "tool":
        message["content"] = "tool result seen: " + _text_of(last.get("content"))
        finish = "stop"
    elif body.get("tools"):
        fn = body["tools"][0]["function"]["name"]
        message["tool_calls"] = [{"id": "call_mockE2E", "type": "function", "function": {"name": fn, "arguments": json.dumps({"city": "Paris"})}}]
        finish = "tool_calls"
    else:
        user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        message["content"] = CHAT_PREFIX + _text_of(user.get("content"))
        finish = "stop"
    if reasoning:
        message["reasoning_content"] = reasoning
    usage = {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37, "prompt_tokens_details": {"cached_tokens": 4}}
    cid, created = "chatcmpl-dialect", int(time.time())
    if not body.get("stream"):
        resp = {"id": cid, "object": "chat.completion", "created": created, "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
        return handler._send(200, json.dumps(resp).encode())

    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
    handler.end_headers()

    def chunk(delta: dict, finish_reason=None, usage_val=None):
        c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": body.get("model"),
             "choices": [] if usage_val else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        if usage_val:
            c["usage"] = usage_val
        handler.wfile.write(b"data: " + json.dumps(c).encode() + b"\n\n")
        handler.wfile.flush()

    chunk({"role": "assistant", "content": ""})
    if reasoning:
        chunk({"reasoning_content": reasoning})
    if message.get("content"):
        t = message["content"]
        for j in range(0, len(t), 6):
            chunk({"content": t[j : j + 6]})
    for i, call in enumerate(message.get("tool_calls") or []):
        chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}]})
        args = call["function"]["arguments"]
        for j in range(0, len(args), 4):
            chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j : j + 4]}}]})
    chunk({}, finish)
    if (body.get("stream_options") or {}).get("include_usage"):
        chunk({}, None, usage)
    handler.wfile.write(b"data: [DONE]\n\n")
    handler.wfile.flush()
