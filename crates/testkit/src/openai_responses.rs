//! `POST /v1/responses` on the mock OpenAI API: a response object, or the
//! Responses event stream, as OpenAI sends them. A request whose last input
//! item is a user message asking for "weather" gets a function call instead
//! of text, so tests can drive a tool turn.

use axum::body::Body;
use axum::response::Response;
use serde_json::{json, Value};

pub const RESPONSE_ID: &str = "resp_mockupstream123";

fn asks_for_tool(req: &Value) -> bool {
    let has_tools = req
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    let last_is_output = req
        .get("input")
        .and_then(Value::as_array)
        .and_then(|items| items.last())
        .is_some_and(|i| i.get("type").and_then(Value::as_str) == Some("function_call_output"));
    has_tools && !last_is_output
}

fn envelope(model: &str, status: &str, output: Vec<Value>, usage: Value) -> Value {
    json!({
        "id": RESPONSE_ID, "object": "response", "created_at": 1_700_000_000, "status": status,
        "error": null, "incomplete_details": null, "instructions": null, "max_output_tokens": null,
        "model": model, "output": output, "parallel_tool_calls": true, "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null}, "store": true, "temperature": 1.0,
        "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
        "truncation": "disabled", "usage": usage, "user": null, "metadata": {}
    })
}

fn usage() -> Value {
    json!({"input_tokens": 11, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 6,
           "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 17})
}

/// The response object for `content` (or a function call, see the module doc).
pub fn response_json(model: &str, req: &Value, content: &str) -> Value {
    let item = if asks_for_tool(req) {
        json!({"id": "fc_mock1", "type": "function_call", "status": "completed",
               "arguments": "{\"city\":\"Paris\"}", "call_id": "call_mock1", "name": "get_weather"})
    } else {
        json!({"id": "msg_mock1", "type": "message", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": content}]})
    };
    envelope(model, "completed", vec![item], usage())
}

/// The event stream OpenAI sends for the same answer.
pub fn response_events(model: &str, req: &Value, content: &str) -> Vec<(String, Value)> {
    let done = response_json(model, req, content);
    let item = done["output"][0].clone();
    let mut events = vec![
        (
            "response.created".to_owned(),
            json!({"response": envelope(model, "in_progress", vec![], Value::Null)}),
        ),
        (
            "response.in_progress".to_owned(),
            json!({"response": envelope(model, "in_progress", vec![], Value::Null)}),
        ),
    ];
    if item["type"] == "function_call" {
        let mut added = item.clone();
        added["arguments"] = json!("");
        added["status"] = json!("in_progress");
        events.push((
            "response.output_item.added".into(),
            json!({"output_index": 0, "item": added}),
        ));
        events.push((
            "response.function_call_arguments.delta".into(),
            json!({"item_id": "fc_mock1", "output_index": 0, "delta": item["arguments"]}),
        ));
        events.push((
            "response.function_call_arguments.done".into(),
            json!({"item_id": "fc_mock1", "output_index": 0, "arguments": item["arguments"]}),
        ));
    } else {
        events.push(("response.output_item.added".into(), json!({"output_index": 0, "item": {"id": "msg_mock1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}})));
        events.push(("response.content_part.added".into(), json!({"item_id": "msg_mock1", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "annotations": [], "text": ""}})));
        for piece in content.split_inclusive(' ') {
            events.push(("response.output_text.delta".into(), json!({"item_id": "msg_mock1", "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []})));
        }
        events.push(("response.output_text.done".into(), json!({"item_id": "msg_mock1", "output_index": 0, "content_index": 0, "text": content, "logprobs": []})));
        events.push(("response.content_part.done".into(), json!({"item_id": "msg_mock1", "output_index": 0, "content_index": 0, "part": item["content"][0]})));
    }
    events.push((
        "response.output_item.done".into(),
        json!({"output_index": 0, "item": item}),
    ));
    events.push(("response.completed".into(), json!({"response": done})));
    for (n, (kind, data)) in events.iter_mut().enumerate() {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(n);
    }
    events
}

pub fn default_reply(model: &str, req: &Value, content: &str) -> Response {
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let b = Response::builder()
        .status(200)
        .header("x-request-id", "req_mock123");
    if !stream {
        return b
            .header("content-type", "application/json")
            .body(Body::from(response_json(model, req, content).to_string()))
            .unwrap_or_default();
    }
    let text: String = response_events(model, req, content)
        .iter()
        .map(|(k, d)| format!("event: {k}\ndata: {d}\n\n"))
        .collect();
    b.header("content-type", "text/event-stream; charset=utf-8")
        .body(Body::from(text))
        .unwrap_or_default()
}
