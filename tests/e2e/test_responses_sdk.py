"""The OpenAI SDK's Responses API (`client.responses.create`, as Codex and the
newer SDKs use it) through the real ferrolite binary, against a model whose
upstream has a Responses API of its own (OpenAI: passed through) and one
whose upstream is Anthropic (bridged through chat): plain and streamed
answers, a function-call turn, `previous_response_id`, and the stored
response routes. Every test also checks what the upstream received.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import openai
import pytest

from conftest import MASTER_KEY, READY_TIMEOUT_S, _binary_path, _free_port
from responses_mock import ANTHROPIC_PREFIX, OPENAI_PREFIX, TOOL_ARGS, ResponsesMock, start_responses_mock

OPENAI_MODEL = "resp-openai"
ANTHROPIC_MODEL = "resp-claude"
MODELS = [OPENAI_MODEL, ANTHROPIC_MODEL]

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture(scope="module")
def mock() -> ResponsesMock:
    m = start_responses_mock()
    yield m
    m.close()


@pytest.fixture(scope="module")
def rclient(mock: ResponsesMock, tmp_path_factory: pytest.TempPathFactory) -> openai.OpenAI:
    """A gateway of its own, configured for this module's two models."""
    binary = _binary_path()
    if not binary.is_file():
        pytest.fail(f"ferrolite binary not found at {binary}", pytrace=False)
    tmp = tmp_path_factory.mktemp("ferrolite-responses")
    config = tmp / "config.yaml"
    config.write_text(
        f"""\
model_list:
  - model_name: "{OPENAI_MODEL}"
    litellm_params:
      model: "openai/gpt-4.1"
      api_base: "{mock.root_url}/v1"
      api_key: "sk-upstream-openai"
  - model_name: "{ANTHROPIC_MODEL}"
    litellm_params:
      model: "anthropic/claude-sonnet-4-5"
      api_base: "{mock.root_url}"
      api_key: "sk-ant-upstream"
litellm_settings:
  num_retries: 0
  request_timeout: 10
general_settings:
  master_key: "{MASTER_KEY}"
"""
    )
    stderr_path = tmp / "stderr.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM_", "OPENAI_"))}
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ferrolite exited: {stderr_path.read_text()}", pytrace=False)
            try:
                if httpx.get(base + "/health/readiness", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"ferrolite not ready: {stderr_path.read_text()}", pytrace=False)
            time.sleep(0.05)
        client = openai.OpenAI(base_url=base + "/v1", api_key=MASTER_KEY, max_retries=0, timeout=15.0)
        yield client
        client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _prefix(model: str) -> str:
    return OPENAI_PREFIX if model == OPENAI_MODEL else ANTHROPIC_PREFIX


def _upstream_path(model: str) -> str:
    return "/v1/responses" if model == OPENAI_MODEL else "/v1/messages"


@pytest.mark.parametrize("model", MODELS)
def test_create(rclient: openai.OpenAI, mock: ResponsesMock, model: str) -> None:
    marker = f"hello-create-{model}"
    r = rclient.responses.create(model=model, instructions="Answer briefly.", input=marker, max_output_tokens=64)
    assert r.object == "response"
    assert r.status == "completed"
    assert r.model == model
    assert r.id.startswith("resp_")
    assert r.output_text == _prefix(model) + marker
    assert r.usage is not None and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens > 0

    sent = [c for c in mock.calls(_upstream_path(model)) if marker in json.dumps(c.body)]
    assert len(sent) == 1
    body = sent[0].body
    if model == OPENAI_MODEL:
        # Passed through: the client's body with only the model replaced.
        assert body["model"] == "gpt-4.1"
        assert body["input"] == marker
        assert body["instructions"] == "Answer briefly."
        assert body["max_output_tokens"] == 64
        assert sent[0].headers["authorization"] == "Bearer sk-upstream-openai"
    else:
        assert body["model"] == "claude-sonnet-4-5"
        assert "Answer briefly." in json.dumps(body["system"])
        assert body["max_tokens"] == 64
        assert body["messages"][-1]["role"] == "user"
        assert sent[0].headers["x-api-key"] == "sk-ant-upstream"


@pytest.mark.parametrize("model", MODELS)
def test_stream(rclient: openai.OpenAI, mock: ResponsesMock, model: str) -> None:
    marker = f"hello-stream-{model}"
    events = list(rclient.responses.create(model=model, input=marker, stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    for expected in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert expected in types, types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == _prefix(model) + marker
    final = events[-1].response
    assert final.output_text == text
    assert final.model == model
    assert final.usage is not None and final.usage.output_tokens > 0
    sent = [c for c in mock.calls(_upstream_path(model)) if marker in json.dumps(c.body)]
    assert len(sent) == 1 and sent[0].body["stream"] is True

    # The SDK's own stream helper accumulates the same answer from the events.
    with rclient.responses.stream(model=model, input=marker + "-helper") as s:
        done = s.get_final_response()
    assert done.output_text == _prefix(model) + marker + "-helper"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_function_call_turn(rclient: openai.OpenAI, mock: ResponsesMock, model: str, stream: bool) -> None:
    marker = f"weather-{model}-{stream}"
    if stream:
        with rclient.responses.stream(model=model, input=f"What is the weather in Paris? {marker}", tools=[WEATHER_TOOL]) as s:
            first = s.get_final_response()
    else:
        first = rclient.responses.create(model=model, input=f"What is the weather in Paris? {marker}", tools=[WEATHER_TOOL])
    calls = [i for i in first.output if i.type == "function_call"]
    assert len(calls) == 1, first.output
    call = calls[0]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == TOOL_ARGS
    assert call.call_id

    second = rclient.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"sky": "sunny"})}],
    )
    assert second.status == "completed"
    assert second.output_text.startswith(_prefix(model))
    assert second.previous_response_id == first.id

    sent = [
        c.body
        for c in mock.calls(_upstream_path(model))
        if marker in json.dumps(c.body) or c.body.get("previous_response_id") == first.id
    ]
    assert len(sent) == 2
    if model == OPENAI_MODEL:
        # The upstream produced the first response, so it continues it itself.
        assert sent[1]["previous_response_id"] == first.id
        assert sent[1]["input"][0]["call_id"] == call.call_id
    else:
        # Anthropic keeps no state: the gateway sent the whole conversation.
        msgs = sent[1]["messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
        tool_use = [b for b in msgs[1]["content"] if b["type"] == "tool_use"][0]
        assert tool_use["id"] == call.call_id and tool_use["input"] == TOOL_ARGS
        result = [b for b in msgs[2]["content"] if b["type"] == "tool_result"][0]
        assert result["tool_use_id"] == call.call_id
        assert "sunny" in json.dumps(result["content"])
        assert sent[1]["tools"][0]["name"] == "get_weather"


def test_previous_response_id_carries_the_conversation_to_anthropic(rclient: openai.OpenAI, mock: ResponsesMock) -> None:
    first = rclient.responses.create(model=ANTHROPIC_MODEL, input="first-turn-question")
    second = rclient.responses.create(model=ANTHROPIC_MODEL, input="second-turn-question", previous_response_id=first.id)
    assert second.output_text == ANTHROPIC_PREFIX + "second-turn-question"
    sent = [c.body for c in mock.calls("/v1/messages") if "second-turn-question" in json.dumps(c.body)]
    msgs = sent[0]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert "first-turn-question" in json.dumps(msgs[0])
    assert ANTHROPIC_PREFIX + "first-turn-question" in json.dumps(msgs[1])

    # A third turn on another model (the OpenAI upstream does not know these
    # ids) gets the whole conversation as input instead.
    third = rclient.responses.create(model=OPENAI_MODEL, input="third-turn-question", previous_response_id=second.id)
    assert third.output_text == OPENAI_PREFIX + "third-turn-question"
    body = [c.body for c in mock.calls("/v1/responses") if "third-turn-question" in json.dumps(c.body)][0]
    assert "previous_response_id" not in body
    texts = json.dumps(body["input"])
    for t in ("first-turn-question", "second-turn-question", "third-turn-question"):
        assert t in texts


@pytest.mark.parametrize("model", MODELS)
def test_retrieve_and_delete(rclient: openai.OpenAI, model: str) -> None:
    r = rclient.responses.create(model=model, input="keep me")
    got = rclient.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text
    rclient.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        rclient.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        rclient.responses.retrieve("resp_does_not_exist")


def test_store_false_keeps_nothing(rclient: openai.OpenAI) -> None:
    r = rclient.responses.create(model=ANTHROPIC_MODEL, input="forget me", store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        rclient.responses.retrieve(r.id)
    with pytest.raises(openai.BadRequestError):
        rclient.responses.create(model=ANTHROPIC_MODEL, input="more", previous_response_id=r.id)
