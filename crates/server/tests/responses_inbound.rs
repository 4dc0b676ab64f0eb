//! `POST /v1/responses` against every kind of upstream: passed through to
//! OpenAI's own Responses API, bridged through chat to Anthropic and to an
//! OpenAI-compatible server without one; streaming, function calls,
//! `previous_response_id` and the stored-response routes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestGateway, MASTER};
use ferrolite_testkit::anthropic::{self, MockAnthropic};
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::{json, Value};

fn anthropic_config(root: &str) -> String {
    format!("model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_base: {root}\n      api_key: sk-ant-key\n")
}

fn openai_config(base: &str) -> String {
    format!("model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt-4.1\n      api_base: {base}\n      api_key: sk-up\n")
}

fn vllm_config(base: &str) -> String {
    format!("model_list:\n  - model_name: local\n    litellm_params:\n      model: hosted_vllm/qwen\n      api_base: {base}\n")
}

/// `(event name, data)` of every SSE frame, checking `type` and the
/// `sequence_number`s (0, 1, 2, …) on the way.
fn events(text: &str) -> Vec<(String, Value)> {
    let evs: Vec<(String, Value)> = text
        .split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let name = f
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("no event line: {f}"));
            let data = f.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect();
    for (i, (name, data)) in evs.iter().enumerate() {
        assert_eq!(data["type"], name.as_str(), "{data}");
        assert_eq!(data["sequence_number"], i as u64, "{data}");
    }
    evs
}

fn kinds(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter().map(|(k, _)| k.as_str()).collect()
}

async fn stream_text(gw: &TestGateway, body: Value) -> (u16, String) {
    let r = gw.post("/v1/responses").json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

fn output_text(resp: &Value) -> String {
    resp["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .filter_map(|c| c["text"].as_str())
        .collect()
}

#[tokio::test]
async fn anthropic_upstream_json_is_bridged() {
    let up = MockAnthropic::start().await;
    let gw = TestGateway::start(&anthropic_config(&up.root_url())).await;
    let (status, _, v) = gw
        .call(
            "/v1/responses",
            json!({"model": "claude", "instructions": "Be brief.", "input": "Hi there", "max_output_tokens": 100, "temperature": 0.3}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "claude");
    assert_eq!(v["instructions"], "Be brief.");
    assert_eq!(v["temperature"], 0.3);
    assert_eq!(output_text(&v), anthropic::DEFAULT_TEXT);
    assert!(v["output"][0]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["usage"]["input_tokens"], anthropic::INPUT_TOKENS);
    assert_eq!(v["usage"]["output_tokens"], anthropic::OUTPUT_TOKENS);
    assert_eq!(
        v["usage"]["total_tokens"],
        anthropic::INPUT_TOKENS + anthropic::OUTPUT_TOKENS
    );
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 0);

    let sent = &up.calls()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.body["model"], "claude-sonnet-4-5");
    assert_eq!(sent.body["max_tokens"], 100);
    assert_eq!(sent.body["temperature"], 0.3);
    let system = sent.body["system"].to_string();
    assert!(system.contains("Be brief."), "{system}");
    assert_eq!(sent.body["messages"][0]["role"], "user");
    assert!(sent.body["messages"][0].to_string().contains("Hi there"));
}

#[tokio::test]
async fn anthropic_upstream_stream_is_responses_events() {
    let up = MockAnthropic::start().await;
    let gw = TestGateway::start(&anthropic_config(&up.root_url())).await;
    let (status, text) = stream_text(
        &gw,
        json!({"model": "claude", "input": "Hi", "stream": true}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let evs = events(&text);
    let k = kinds(&evs);
    assert_eq!(
        &k[..5],
        &[
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta"
        ]
    );
    assert_eq!(
        &k[k.len() - 4..],
        &[
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let deltas: String = evs
        .iter()
        .filter(|(k, _)| k == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, anthropic::DEFAULT_TEXT);
    let done = &evs.last().unwrap().1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["model"], "claude");
    assert_eq!(output_text(done), anthropic::DEFAULT_TEXT);
    assert_eq!(done["usage"]["output_tokens"], anthropic::OUTPUT_TOKENS);
    assert_eq!(evs[0].1["response"]["id"], done["id"]);
    assert!(!text.contains("[DONE]"));

    // The streamed response was kept.
    let id = done["id"].as_str().unwrap();
    let r = gw.get(&format!("/v1/responses/{id}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let kept: Value = r.json().await.unwrap();
    assert_eq!(output_text(&kept), anthropic::DEFAULT_TEXT);
}

#[tokio::test]
async fn function_call_turn_with_previous_response_id_on_anthropic() {
    let up = MockAnthropic::start().await;
    up.script([
        anthropic::Reply::tool_use("get_weather", json!({"city": "Paris"})),
        anthropic::Reply::Text("It is sunny in Paris.".into()),
    ]);
    let gw = TestGateway::start(&anthropic_config(&up.root_url())).await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let (status, _, first) = gw
        .call(
            "/v1/responses",
            json!({"model": "claude", "input": "Weather in Paris?", "tools": tools, "tool_choice": "auto"}),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    let call = first["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap_or_else(|| panic!("no function call: {first}"))
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    let call_id = call["call_id"].as_str().unwrap();
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    let sent = &up.calls()[0].body;
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(sent["tools"][0]["input_schema"]["required"][0], "city");

    let (status, _, second) = gw
        .call(
            "/v1/responses",
            json!({"model": "claude", "previous_response_id": first["id"], "tools": tools,
                   "input": [{"type": "function_call_output", "call_id": call_id, "output": "{\"sky\":\"sunny\"}"}]}),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(output_text(&second), "It is sunny in Paris.");
    assert_eq!(second["previous_response_id"], first["id"]);
    // The upstream saw the whole conversation: question, tool use, result.
    let msgs = up.calls()[1].body["messages"].clone();
    assert_eq!(msgs.as_array().unwrap().len(), 3, "{msgs}");
    assert_eq!(msgs[0]["role"], "user");
    assert_eq!(msgs[1]["role"], "assistant");
    assert!(msgs[1].to_string().contains(call_id), "{msgs}");
    assert_eq!(msgs[2]["role"], "user");
    assert!(msgs[2].to_string().contains("tool_result"), "{msgs}");
    assert!(msgs[2].to_string().contains("sunny"), "{msgs}");
}

#[tokio::test]
async fn stored_responses_get_delete_and_unknown_ids() {
    let up = MockAnthropic::start().await;
    let gw = TestGateway::start(&anthropic_config(&up.root_url())).await;
    let (_, _, v) = gw
        .call("/v1/responses", json!({"model": "claude", "input": "Hi"}))
        .await;
    let id = v["id"].as_str().unwrap();
    for prefix in ["/v1", "", "/openai/v1"] {
        let r = gw
            .get(&format!("{prefix}/responses/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), v);
    }
    let url = gw.url(&format!("/v1/responses/{id}"));
    let r = gw
        .http
        .delete(&url)
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": id, "object": "response", "deleted": true})
    );
    let r = gw.get(&format!("/v1/responses/{id}")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains(id), "{e}");
    let r = gw
        .http
        .delete(&url)
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A follow-up to an unknown response cannot be bridged.
    let (status, _, e) = gw
        .call(
            "/v1/responses",
            json!({"model": "claude", "input": "more", "previous_response_id": "resp_nope"}),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("resp_nope"));

    // store: false keeps nothing.
    let (_, _, v) = gw
        .call(
            "/v1/responses",
            json!({"model": "claude", "input": "Hi", "store": false}),
        )
        .await;
    assert_eq!(v["store"], false);
    let r = gw
        .get(&format!("/v1/responses/{}", v["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Stored-response routes need a key like every other.
    let r = gw.http.get(gw.url("/v1/responses/x")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn openai_upstream_is_passed_through() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&openai_config(&up.base_url())).await;
    let body = json!({"model": "gpt", "input": [{"role": "user", "content": "Hi"}], "store": true,
        "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "low"}, "text": {"verbosity": "low"}});
    let (status, headers, v) = gw.call("/v1/responses", body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], ferrolite_testkit::openai_responses::RESPONSE_ID);
    assert_eq!(v["model"], "gpt");
    assert_eq!(output_text(&v), "Hello! How can I help you today?");
    assert_eq!(headers["x-litellm-model-group"], "gpt");
    let sent = &up.calls()[0];
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(sent.headers["authorization"], "Bearer sk-up");
    // Everything but the model passes as the client sent it.
    assert_eq!(
        sent.body,
        json!({"model": "gpt-4.1", "input": [{"role": "user", "content": "Hi"}], "store": true,
            "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "low"}, "text": {"verbosity": "low"}})
    );

    // A follow-up to a response the upstream produced keeps its id.
    let (status, _, _) = gw
        .call(
            "/v1/responses",
            json!({"model": "gpt", "input": "more", "previous_response_id": v["id"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(up.calls()[1].body["previous_response_id"], v["id"]);
    assert_eq!(up.calls()[1].body["input"], "more");
    // And the gateway kept it.
    let r = gw
        .get(&format!("/v1/responses/{}", v["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn openai_upstream_stream_is_relayed_with_the_model_renamed() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&openai_config(&up.base_url())).await;
    let (status, text) =
        stream_text(&gw, json!({"model": "gpt", "input": "Hi", "stream": true})).await;
    assert_eq!(status, 200, "{text}");
    let evs = events(&text);
    let k = kinds(&evs);
    assert_eq!(k[0], "response.created");
    assert_eq!(*k.last().unwrap(), "response.completed");
    assert!(!text.contains("gpt-4.1"), "{text}");
    assert_eq!(evs.last().unwrap().1["response"]["model"], "gpt");
    assert_eq!(up.calls()[0].body["stream"], true);
    assert_eq!(up.calls()[0].path, "/v1/responses");
}

#[tokio::test]
async fn openai_upstream_errors_are_retried() {
    let up = MockOpenAi::start().await;
    up.script([Reply::error(500, "boom"), Reply::Default]);
    let gw = TestGateway::start(&openai_config(&up.base_url())).await;
    let (status, headers, v) = gw
        .call("/v1/responses", json!({"model": "gpt", "input": "Hi"}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(headers["x-litellm-attempted-retries"], "1");
    assert_eq!(up.call_count(), 2);
    // A client error is not retried and keeps OpenAI's shape.
    up.script([Reply::error(400, "bad input")]);
    let (status, _, e) = gw
        .call("/v1/responses", json!({"model": "gpt", "input": "Hi"}))
        .await;
    assert_eq!(status, 400);
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bad input"));
}

#[tokio::test]
async fn compatible_server_without_responses_is_bridged_through_chat() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&vllm_config(&up.base_url())).await;
    let (status, _, v) = gw
        .call(
            "/v1/responses",
            json!({"model": "local", "instructions": "sys", "input": "Hi",
                   "text": {"format": {"type": "json_schema", "name": "o", "schema": {"type": "object"}}},
                   "reasoning": {"effort": "low"}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(output_text(&v), "Hello! How can I help you today?");
    assert_eq!(v["usage"]["input_tokens"], 9);
    assert_eq!(v["usage"]["total_tokens"], 21);
    let sent = &up.calls()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "system", "content": "sys"})
    );
    assert_eq!(sent.body["response_format"]["type"], "json_schema");
    assert_eq!(sent.body["reasoning_effort"], "low");

    let (status, text) = stream_text(
        &gw,
        json!({"model": "local", "input": "Hi", "stream": true}),
    )
    .await;
    assert_eq!(status, 200);
    let evs = events(&text);
    let done = &evs.last().unwrap().1;
    assert_eq!(done["type"], "response.completed");
    assert_eq!(
        output_text(&done["response"]),
        "Hello! How can I help you today?"
    );
    assert_eq!(done["response"]["usage"]["total_tokens"], 21);
}

#[tokio::test]
async fn mock_models_answer_too() {
    let gw = TestGateway::start("model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n      mock_response: Mocked words here\n").await;
    let (status, _, v) = gw
        .call("/responses", json!({"model": "m", "input": "Hi"}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(output_text(&v), "Mocked words here");
    let (status, text) =
        stream_text(&gw, json!({"model": "m", "input": "Hi", "stream": true})).await;
    assert_eq!(status, 200);
    let evs = events(&text);
    assert_eq!(
        output_text(&evs.last().unwrap().1["response"]),
        "Mocked words here"
    );
    let (status, _, e) = gw
        .call("/v1/responses", json!({"model": "nope", "input": "Hi"}))
        .await;
    assert_eq!(status, 400, "{e}");
    let (status, _, e) = gw.call("/v1/responses", json!({"input": "Hi"})).await;
    assert_eq!(status, 400);
    assert_eq!(e["error"]["param"], "model");
}
