"""End-to-end: Google's ``google-genai`` SDK against ferrolite's Gemini routes
(``/v1beta/models/{model}:generateContent`` …), answered by an OpenAI-format
upstream (``mock_upstream.py``)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from google import genai
from google.genai import errors, types

from conftest import MASTER_KEY
from mock_upstream import TOOL_CALL_ARGS, UPSTREAM_PREFIX


def _marker() -> str:
    return f"marker-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def gclient(gateway) -> genai.Client:
    c = genai.Client(
        api_key=MASTER_KEY,
        http_options=types.HttpOptions(base_url=gateway.base_url, timeout=15_000),
    )
    yield c
    c.close()


def _weather_tool() -> types.Tool:
    return types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather",
                description="Current weather in a city",
                parameters=types.Schema(
                    type=types.Type.OBJECT,
                    properties={"city": types.Schema(type=types.Type.STRING)},
                    required=["city"],
                ),
            )
        ]
    )


def test_generate_content_non_stream(gclient: genai.Client, upstream):
    m = _marker()
    resp = gclient.models.generate_content(
        model="upstream-chat",
        contents=f"say {m}",
        config=types.GenerateContentConfig(system_instruction="Be terse.", temperature=0.1, max_output_tokens=40),
    )
    assert resp.text == UPSTREAM_PREFIX + f"say {m}"
    cand = resp.candidates[0]
    assert cand.finish_reason == types.FinishReason.STOP
    assert cand.content.role == "model"
    assert resp.usage_metadata.prompt_token_count == 11
    assert resp.usage_metadata.total_token_count == 11 + resp.usage_metadata.candidates_token_count
    assert resp.model_version == "upstream-chat"

    (sent,) = upstream.find(m)
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "gpt-upstream"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": f"say {m}"},
    ]
    assert sent.body["temperature"] == 0.1
    assert sent.body["max_tokens"] == 40
    # The gateway key never reaches the upstream.
    assert MASTER_KEY not in json.dumps(sent.headers)


def test_generate_content_stream(gclient: genai.Client, upstream):
    m = _marker()
    chunks = list(gclient.models.generate_content_stream(model="upstream-chat", contents=f"stream {m}"))
    assert len(chunks) >= 3, "expected the text over several chunks"
    text = "".join(c.text or "" for c in chunks)
    assert text == UPSTREAM_PREFIX + f"stream {m}"
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.total_token_count > 0
    for c in chunks[:-1]:
        assert c.candidates[0].finish_reason is None
    (sent,) = upstream.find(m)
    assert sent.body["stream"] is True


def test_function_call_turn(gclient: genai.Client, upstream):
    m = _marker()
    config = types.GenerateContentConfig(
        tools=[_weather_tool()],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    question = types.Content(role="user", parts=[types.Part.from_text(text=f"weather in Paris? {m}")])
    first = gclient.models.generate_content(model="upstream-tools", contents=[question], config=config)
    (call,) = first.function_calls
    assert call.name == "get_weather"
    assert call.args == TOOL_CALL_ARGS
    assert first.candidates[0].finish_reason == types.FinishReason.STOP

    reply = types.Part.from_function_response(name="get_weather", response={"temp_c": 21})
    second = gclient.models.generate_content(
        model="upstream-tools",
        contents=[question, first.candidates[0].content, types.Content(role="user", parts=[reply])],
        config=config,
    )
    assert second.text == 'tool said: {"temp_c":21}'

    sent = upstream.find(m)
    assert len(sent) == 2
    tools = sent[0].body["tools"]
    assert tools[0]["function"]["name"] == "get_weather"
    assert tools[0]["function"]["parameters"]["properties"]["city"]["type"] == "string"
    msgs = sent[1].body["messages"]
    assert [x["role"] for x in msgs] == ["user", "assistant", "tool"]
    call_id = msgs[1]["tool_calls"][0]["id"]
    assert msgs[2]["tool_call_id"] == call_id
    assert json.loads(msgs[1]["tool_calls"][0]["function"]["arguments"]) == TOOL_CALL_ARGS


def test_count_tokens_and_errors(gclient: genai.Client, gateway):
    counted = gclient.models.count_tokens(model="upstream-chat", contents="abcdefgh")
    assert counted.total_tokens == 2

    with pytest.raises(errors.ClientError) as e:
        gclient.models.generate_content(model="no-such-model", contents="hi")
    assert e.value.code == 404
    assert e.value.status == "NOT_FOUND"

    bad = genai.Client(api_key="sk-wrong", http_options=types.HttpOptions(base_url=gateway.base_url, timeout=15_000))
    with pytest.raises(errors.ClientError) as e:
        bad.models.generate_content(model="upstream-chat", contents="hi")
    assert e.value.code == 401
    assert e.value.status == "UNAUTHENTICATED"
    bad.close()


def test_raw_json_array_stream_and_query_key(gateway):
    """Without ``alt=sse`` Google streams one JSON array; the key may be ``?key=``."""
    m = _marker()
    r = httpx.post(
        f"{gateway.base_url}/v1beta/models/upstream-chat:streamGenerateContent?key={MASTER_KEY}",
        json={"contents": [{"role": "user", "parts": [{"text": m}]}]},
        timeout=15,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    items = r.json()
    assert "".join(p["text"] for it in items for p in it["candidates"][0]["content"]["parts"] if "text" in p) == (
        UPSTREAM_PREFIX + m
    )
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"
    assert MASTER_KEY not in gateway.stderr()
