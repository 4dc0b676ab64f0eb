"""The official ``anthropic`` SDK against the gateway's ``/v1/messages``, as
Claude Code and the Claude Agent SDK use it (``ANTHROPIC_BASE_URL`` = the
gateway, the gateway key as API key or auth token).

Two kinds of upstream: ``claude-upstream`` is Anthropic's API (the body
passes through), ``dialect-chat`` / ``dialect-reasoner`` are OpenAI-format
(translated to chat and back). Each test asserts what the mock upstream
received as well as what the client got.
"""

from __future__ import annotations

import uuid

import anthropic
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY
from mock_anthropic import ANTHROPIC_PREFIX, CHAT_PREFIX, COUNTED_TOKENS, SIGNATURE, THINKING_TEXT

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


@pytest.fixture(scope="module")
def claude(gateway) -> anthropic.Anthropic:
    c = anthropic.Anthropic(base_url=gateway.base_url, api_key=gateway.master_key, max_retries=0, timeout=15.0)
    yield c
    c.close()


def marker() -> str:
    return f"mark-{uuid.uuid4().hex[:10]}"


def only(upstream, mark: str):
    found = upstream.find(mark)
    assert len(found) == 1, [r.path for r in found]
    return found[0]


def error_type(e: anthropic.APIStatusError) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    assert body.get("type") == "error", body
    return body["error"]["type"]


def blocks(content) -> list[dict]:
    """Response content blocks as request params (the next turn)."""
    return [b.model_dump(exclude_none=True) for b in content]


# --- Anthropic upstream: passthrough -----------------------------------------


def test_claude_upstream_non_stream(claude, upstream):
    mark = marker()
    resp = claude.messages.create(
        model="claude-upstream",
        max_tokens=256,
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": f"hello {mark}"}],
        metadata={"user_id": "user-e2e"},
        stop_sequences=["###"],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    assert resp.type == "message"
    assert resp.model == "claude-upstream"
    assert resp.content[0].text == f"{ANTHROPIC_PREFIX}hello {mark}"
    assert resp.stop_reason == "end_turn"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (21, 9)
    assert (resp.usage.cache_creation_input_tokens, resp.usage.cache_read_input_tokens) == (5, 3)

    sent = only(upstream, mark)
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == UPSTREAM_KEY
    assert MASTER_KEY not in str(sent.headers)
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    # The SDK's own version header is forwarded, not the gateway default.
    assert sent.headers["anthropic-version"] == claude.default_headers["anthropic-version"]
    assert sent.body["model"] == "claude-sonnet-4-5"
    assert sent.body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent.body["metadata"] == {"user_id": "user-e2e"}
    assert sent.body["stop_sequences"] == ["###"]


def test_claude_upstream_stream(claude, upstream):
    mark = marker()
    with claude.messages.stream(
        model="claude-upstream", max_tokens=256, messages=[{"role": "user", "content": f"stream {mark}"}]
    ) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == f"{ANTHROPIC_PREFIX}stream {mark}"
    assert final.model == "claude-upstream"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 9
    assert only(upstream, mark).body["stream"] is True


@pytest.mark.parametrize("model", ["claude-upstream", "dialect-chat"])
@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_then_tool_result(claude, upstream, model, stream):
    mark = marker()
    first_turn = [{"role": "user", "content": f"weather in Paris? {mark}"}]
    if stream:
        with claude.messages.stream(model=model, max_tokens=256, tools=TOOLS, messages=first_turn) as s:
            first = s.get_final_message()
    else:
        first = claude.messages.create(model=model, max_tokens=256, tools=TOOLS, messages=first_turn)
    assert first.stop_reason == "tool_use"
    use = [b for b in first.content if b.type == "tool_use"][0]
    assert use.name == "get_weather"
    assert use.input == {"city": "Paris"}

    second_turn = first_turn + [
        {"role": "assistant", "content": blocks(first.content)},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21C"}]},
    ]
    second = claude.messages.create(model=model, max_tokens=256, tools=TOOLS, messages=second_turn)
    assert second.stop_reason == "end_turn"
    assert second.content[-1].text == "tool result seen: sunny, 21C"

    sent = upstream.find(mark)
    assert len(sent) == 2
    body = sent[1].body
    if model == "claude-upstream":
        # Passed through: Anthropic's blocks as the client sent them.
        assert body["tools"] == TOOLS
        assert body["messages"][1]["content"][0]["type"] == "tool_use"
        assert body["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21C"}
    else:
        # Translated to chat: function tools, tool_calls, a tool message.
        assert body["tools"][0]["type"] == "function"
        assert body["tools"][0]["function"]["name"] == "get_weather"
        assert body["tools"][0]["function"]["parameters"] == TOOLS[0]["input_schema"]
        assert body["messages"][1]["tool_calls"][0]["id"] == use.id
        assert body["messages"][2] == {"role": "tool", "tool_call_id": use.id, "content": "sunny, 21C"}


# --- thinking ------------------------------------------------------------------


def test_thinking_passes_through_with_signature(claude, upstream):
    mark = marker()
    thinking = {"type": "enabled", "budget_tokens": 2048}
    resp = claude.messages.create(
        model="claude-upstream", max_tokens=4096, thinking=thinking,
        messages=[{"role": "user", "content": f"think {mark}"}],
    )
    assert resp.content[0].type == "thinking"
    assert resp.content[0].thinking == THINKING_TEXT
    assert resp.content[0].signature == SIGNATURE
    assert only(upstream, mark).body["thinking"] == thinking

    # Streamed: thinking_delta and signature_delta arrive; the signed block
    # goes back on the next turn unchanged.
    with claude.messages.stream(
        model="claude-upstream", max_tokens=4096, thinking=thinking,
        messages=[{"role": "user", "content": f"think again {mark}"}],
    ) as s:
        kinds = [e.delta.type for e in s if e.type == "content_block_delta"]
        final = s.get_final_message()
    assert "thinking_delta" in kinds and "signature_delta" in kinds
    assert final.content[0].signature == SIGNATURE
    claude.messages.create(
        model="claude-upstream", max_tokens=4096, thinking=thinking,
        messages=[
            {"role": "user", "content": f"think again {mark}"},
            {"role": "assistant", "content": blocks(final.content)},
            {"role": "user", "content": f"and more {mark}"},
        ],
    )
    replayed = upstream.find(mark)[-1].body["messages"][1]["content"][0]
    assert replayed == {"type": "thinking", "thinking": THINKING_TEXT, "signature": SIGNATURE}


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_on_openai_upstreams(claude, upstream, stream):
    thinking = {"type": "enabled", "budget_tokens": 2048}

    def ask(model: str, mark: str):
        kw = dict(model=model, max_tokens=4096, thinking=thinking, messages=[{"role": "user", "content": f"reason {mark}"}])
        if stream:
            with claude.messages.stream(**kw) as s:
                return s.get_final_message()
        return claude.messages.create(**kw)

    # A reasoning model: thinking becomes reasoning_effort, reasoning comes back as thinking.
    mark = marker()
    resp = ask("dialect-reasoner", mark)
    sent = only(upstream, mark).body
    assert sent["reasoning_effort"] == "low"
    assert "thinking" not in sent
    assert resp.content[0].type == "thinking"
    assert resp.content[0].thinking == "mock reasoning (effort=low)"
    assert resp.content[-1].text == f"{CHAT_PREFIX}reason {mark}"

    # Any other model: neither is sent, and the request still succeeds.
    mark = marker()
    resp = ask("dialect-chat", mark)
    sent = only(upstream, mark).body
    assert "thinking" not in sent and "reasoning_effort" not in sent
    assert resp.content[0].text == f"{CHAT_PREFIX}reason {mark}"
    assert resp.model == "dialect-chat"


# --- OpenAI-format upstream: translation -------------------------------------


def test_openai_upstream_translates_claude_code_request(claude, upstream):
    mark = marker()
    resp = claude.messages.create(
        model="dialect-chat",
        max_tokens=1000,
        system=[
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "Big cached prompt.", "cache_control": {"type": "ephemeral"}},
        ],
        messages=[{"role": "user", "content": [{"type": "text", "text": f"hi {mark}", "cache_control": {"type": "ephemeral"}}]}],
        metadata={"user_id": "user_abc_account_x_session_y"},
        # (this SDK version has no temperature / top_k arguments)
        extra_body={"temperature": 0.5, "top_k": 5},
    )
    assert resp.model == "dialect-chat"
    assert resp.content[0].text == f"{CHAT_PREFIX}hi {mark}"
    assert resp.usage.input_tokens == 26  # 30 prompt tokens, 4 of them cached
    assert resp.usage.cache_read_input_tokens == 4
    assert resp.usage.output_tokens == 7

    sent = only(upstream, mark)
    assert sent.path.endswith("/chat/completions")
    body = sent.body
    assert body["model"] == "gpt-4o-dialect"
    assert body["messages"][0] == {"role": "system", "content": "You are Claude Code.\nBig cached prompt."}
    assert body["messages"][1] == {"role": "user", "content": f"hi {mark}"}
    assert body["user"] == "user_abc_account_x_session_y"
    assert body["max_tokens"] == 1000
    assert body["temperature"] == 0.5
    for dropped in ("top_k", "metadata", "system", "thinking"):
        assert dropped not in body


def test_openai_upstream_stream_events(claude, upstream):
    mark = marker()
    with claude.messages.stream(
        model="dialect-chat", max_tokens=100, messages=[{"role": "user", "content": f"stream {mark}"}]
    ) as s:
        names = [e.type for e in s]
        final = s.get_final_message()
    assert names[0] == "message_start"
    assert names[-1] == "message_stop"
    assert "content_block_start" in names and "content_block_stop" in names
    assert final.content[0].text == f"{CHAT_PREFIX}stream {mark}"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 7
    assert only(upstream, mark).body["stream"] is True


# --- count_tokens, auth, errors ----------------------------------------------


def test_count_tokens(claude, upstream):
    mark = marker()
    n = claude.messages.count_tokens(model="claude-upstream", messages=[{"role": "user", "content": f"count {mark}"}])
    assert n.input_tokens == COUNTED_TOKENS
    sent = only(upstream, mark)
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.body["model"] == "claude-sonnet-4-5"

    # No count endpoint upstream: the gateway's estimate.
    n = claude.messages.count_tokens(model="dialect-chat", messages=[{"role": "user", "content": "x" * 400}])
    assert 90 <= n.input_tokens <= 130


def test_auth_token_and_errors(gateway):
    # Claude Code's ANTHROPIC_AUTH_TOKEN: sent as a bearer token.
    with anthropic.Anthropic(base_url=gateway.base_url, auth_token=gateway.master_key, max_retries=0) as c:
        r = c.messages.create(model="dialect-chat", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        assert r.content[0].text == f"{CHAT_PREFIX}hi"
        with pytest.raises(anthropic.NotFoundError) as e:
            c.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        assert error_type(e.value) == "not_found_error"
        with pytest.raises(anthropic.BadRequestError):
            c.messages.create(model="dialect-chat", max_tokens=10, messages=[{"role": "system", "content": "hi"}])

    with anthropic.Anthropic(base_url=gateway.base_url, api_key="sk-wrong", max_retries=0) as c:
        with pytest.raises(anthropic.AuthenticationError) as e:
            c.messages.create(model="dialect-chat", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        assert error_type(e.value) == "authentication_error"
