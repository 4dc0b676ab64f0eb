"""End-to-end tests: the real ferrolite binary, driven by the official OpenAI SDK."""

from __future__ import annotations

import base64
import json
import re
import struct
import uuid

import httpx
import openai
import pytest

from conftest import CONFIGURED_MODELS, MASTER_KEY, MOCK_TEXT, UPSTREAM_KEY
from mock_upstream import NOT_FOUND_MESSAGE, RATE_LIMIT_MESSAGE, UPSTREAM_PREFIX


def _marker() -> str:
    return f"marker-{uuid.uuid4().hex[:12]}"


def _msgs(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# --------------------------------------------------------------------------- 1. chat (mock_response)


def test_chat_mock_model_non_stream(client: openai.OpenAI):
    resp = client.chat.completions.create(model="mock-chat", messages=_msgs("hi"))
    assert resp.object == "chat.completion"
    assert resp.model == "mock-chat"
    assert resp.id.startswith("chatcmpl-")
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == MOCK_TEXT
    assert choice.finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


# --------------------------------------------------------------------------- 2. streaming (mock_response)


def test_chat_mock_model_stream_without_usage(client: openai.OpenAI):
    stream = client.chat.completions.create(model="mock-chat", messages=_msgs("hi"), stream=True)
    chunks = list(stream)
    assert len(chunks) >= 2, "expected the text split over several chunks"
    for c in chunks:
        assert c.object == "chat.completion.chunk"
        assert c.model == "mock-chat"
        assert c.usage is None, f"usage chunk sent although the client did not ask: {c}"
        assert len(c.choices) == 1, f"chunk without exactly one choice: {c}"
    assert len({c.id for c in chunks}) == 1, "all chunks of one stream share one id"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == MOCK_TEXT
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_mock_model_stream_with_usage(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model="mock-chat", messages=_msgs("hi"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    # Only the final chunk carries usage; content chunks have it null/absent.
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1] if c.choices)
    assert text == MOCK_TEXT


def test_stream_raw_sse_wire_format(http: httpx.Client):
    body = {"model": "mock-chat", "messages": _msgs("hi"), "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = [e for e in raw.split("\n\n") if e.strip()]
    assert events[-1].strip() == "data: [DONE]"
    for e in events[:-1]:
        assert e.startswith("data: "), e
        json.loads(e[len("data: ") :])


# --------------------------------------------------------------------------- 3. real upstream (Python mock)


def test_upstream_non_stream_request_and_response(client: openai.OpenAI, upstream):
    m = _marker()
    resp = client.chat.completions.create(model="upstream-chat", messages=_msgs(m), temperature=0.3)
    assert resp.choices[0].message.content == UPSTREAM_PREFIX + m
    assert resp.model == "upstream-chat"
    assert resp.usage is not None and resp.usage.prompt_tokens == 11

    sent = upstream.find(m)
    assert len(sent) == 1, f"expected exactly one upstream call, got {len(sent)}"
    req = sent[0]
    assert req.path == "/v1/chat/completions"
    assert req.body["model"] == "gpt-upstream"  # provider prefix stripped
    assert req.body["messages"] == _msgs(m)
    assert req.body["temperature"] == 0.3
    assert not req.body.get("stream")
    assert req.headers.get("authorization") == f"Bearer {UPSTREAM_KEY}"
    leaked = [k for k, v in req.headers.items() if MASTER_KEY in v]
    assert not leaked, f"gateway master key leaked upstream in headers {leaked}"


def test_upstream_stream_adds_include_usage_and_strips_usage_chunk(client: openai.OpenAI, upstream):
    m = _marker()
    chunks = list(client.chat.completions.create(model="upstream-chat", messages=_msgs(m), stream=True))
    assert all(c.usage is None for c in chunks), "usage chunk must be stripped when the client did not ask"
    assert all(len(c.choices) == 1 for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == UPSTREAM_PREFIX + m
    assert chunks[-1].choices[0].finish_reason == "stop"

    sent = upstream.find(m)
    assert len(sent) == 1
    req = sent[0]
    assert req.body["model"] == "gpt-upstream"
    assert req.body["stream"] is True
    assert req.body.get("stream_options", {}).get("include_usage") is True
    assert req.headers.get("authorization") == f"Bearer {UPSTREAM_KEY}"


def test_upstream_stream_with_usage_passes_usage_through(client: openai.OpenAI, upstream):
    m = _marker()
    chunks = list(
        client.chat.completions.create(
            model="upstream-chat", messages=_msgs(m), stream=True, stream_options={"include_usage": True}
        )
    )
    expected_text = UPSTREAM_PREFIX + m
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens == 11
    assert last.usage.completion_tokens == len(expected_text.split())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected_text
    assert upstream.find(m)[0].body["stream_options"]["include_usage"] is True


# --------------------------------------------------------------------------- 4. embeddings


def test_embeddings_float(client: openai.OpenAI):
    inputs = ["alpha", "beta", "gamma"]
    resp = client.embeddings.create(model="mock-embed", input=inputs, encoding_format="float")
    assert resp.object == "list"
    assert resp.model == "mock-embed"
    assert [d.index for d in resp.data] == [0, 1, 2]
    vecs = [d.embedding for d in resp.data]
    assert all(len(v) == 8 and all(isinstance(x, float) for x in v) for v in vecs)
    assert vecs[0] != vecs[1] != vecs[2], "different inputs should give different vectors"
    again = client.embeddings.create(model="mock-embed", input="alpha", encoding_format="float")
    assert len(again.data) == 1
    assert again.data[0].embedding == pytest.approx(vecs[0]), "embeddings must be deterministic"


def test_embeddings_sdk_default_base64(client: openai.OpenAI, http: httpx.Client):
    # The SDK sends encoding_format="base64" when none is given, and decodes it.
    inputs = ["alpha", "beta"]
    resp = client.embeddings.create(model="mock-embed", input=inputs)
    assert len(resp.data) == 2
    floats = client.embeddings.create(model="mock-embed", input=inputs, encoding_format="float")
    for d, f in zip(resp.data, floats.data):
        assert len(d.embedding) == 8
        assert d.embedding == pytest.approx(f.embedding, rel=1e-6)

    # On the wire: OpenAI answers a base64 string of little-endian float32s; LiteLLM's
    # mock embeddings answer a float list regardless. Accept either, but check the values.
    raw = http.post("/v1/embeddings", json={"model": "mock-embed", "input": "alpha", "encoding_format": "base64"})
    assert raw.status_code == 200, raw.text
    emb = raw.json()["data"][0]["embedding"]
    if isinstance(emb, str):
        emb = list(struct.unpack("<8f", base64.b64decode(emb)))
    assert emb == pytest.approx(floats.data[0].embedding, rel=1e-6)


# --------------------------------------------------------------------------- 5. models


def test_models_list(client: openai.OpenAI):
    models = client.models.list()
    ids = [m.id for m in models]
    assert sorted(ids) == sorted(CONFIGURED_MODELS)
    assert all(m.object == "model" for m in models)


# --------------------------------------------------------------------------- 6. errors


def _assert_openai_error_shape(body: dict):
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"]), body


def test_error_unknown_model(client: openai.OpenAI, http: httpx.Client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="no-such-model", messages=_msgs("hi"))
    assert ei.value.status_code == 400
    assert "no-such-model" in ei.value.message

    r = http.post("/v1/chat/completions", json={"model": "no-such-model", "messages": _msgs("hi")})
    assert r.status_code == 400
    _assert_openai_error_shape(r.json())


def test_error_wrong_key(gateway):
    bad = openai.OpenAI(base_url=gateway.api_base, api_key="sk-wrong-key", max_retries=0, timeout=10)
    try:
        with pytest.raises(openai.AuthenticationError) as ei:
            bad.chat.completions.create(model="mock-chat", messages=_msgs("hi"))
        assert ei.value.status_code == 401
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    finally:
        bad.close()
    r = httpx.post(gateway.api_base + "/chat/completions", json={"model": "mock-chat", "messages": _msgs("hi")})
    assert r.status_code == 401, "missing key must be rejected"
    _assert_openai_error_shape(r.json())


def test_x_api_key_header_auth(gateway):
    r = httpx.post(
        gateway.api_base + "/chat/completions",
        headers={"x-api-key": MASTER_KEY},
        json={"model": "mock-chat", "messages": _msgs("hi")},
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == MOCK_TEXT


def test_error_upstream_429(client: openai.OpenAI, upstream):
    m = _marker()
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model="upstream-ratelimited", messages=_msgs(m))
    assert ei.value.status_code == 429
    assert RATE_LIMIT_MESSAGE in ei.value.message
    assert isinstance(ei.value.body, dict) and RATE_LIMIT_MESSAGE in ei.value.body["message"]
    sent = upstream.find(m)
    assert len(sent) == 1, f"num_retries: 0 must mean a single upstream attempt, got {len(sent)}"
    assert sent[0].body["model"] == "rate-limited"


def test_error_upstream_404(client: openai.OpenAI, upstream):
    m = _marker()
    with pytest.raises(openai.NotFoundError) as ei:
        client.chat.completions.create(model="upstream-missing", messages=_msgs(m))
    assert ei.value.status_code == 404
    assert NOT_FOUND_MESSAGE in ei.value.message
    assert len(upstream.find(m)) == 1


def test_error_upstream_unreachable(client: openai.OpenAI):
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(model="upstream-dead", messages=_msgs("hi"))
    assert ei.value.status_code == 502


def test_error_stream_upstream_429(client: openai.OpenAI):
    # Errors before the first byte of a stream come back as plain HTTP errors.
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model="upstream-ratelimited", messages=_msgs("hi"), stream=True)
    assert RATE_LIMIT_MESSAGE in ei.value.message


# --------------------------------------------------------------------------- 7. response headers

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.mark.parametrize("model", ["mock-chat", "upstream-chat"])
def test_raw_response_litellm_headers(client: openai.OpenAI, model: str):
    raw = client.chat.completions.with_raw_response.create(model=model, messages=_msgs("hi"))
    assert raw.status_code == 200
    call_id = raw.headers.get("x-litellm-call-id")
    assert call_id and UUID_RE.match(call_id), f"bad x-litellm-call-id: {call_id!r}"
    assert raw.headers.get("x-litellm-model-group") == model
    parsed = raw.parse()
    assert parsed.model == model
    # Each call gets its own id.
    again = client.chat.completions.with_raw_response.create(model=model, messages=_msgs("hi"))
    assert again.headers.get("x-litellm-call-id") != call_id


def test_streaming_response_litellm_headers(client: openai.OpenAI):
    with client.chat.completions.with_streaming_response.create(
        model="mock-chat", messages=_msgs("hi"), stream=True
    ) as resp:
        assert resp.headers.get("x-litellm-model-group") == "mock-chat"
        assert UUID_RE.match(resp.headers.get("x-litellm-call-id", ""))
        text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
    assert text == MOCK_TEXT


def test_embeddings_raw_response_headers(client: openai.OpenAI):
    raw = client.embeddings.with_raw_response.create(model="mock-embed", input="x", encoding_format="float")
    assert raw.headers.get("x-litellm-model-group") == "mock-embed"
    assert raw.headers.get("x-litellm-call-id")
    assert len(raw.parse().data[0].embedding) == 8
