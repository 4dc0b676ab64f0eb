//! Chat chunks → the Responses event stream, as OpenAI sends it:
//! `response.created`, `response.in_progress`, then for each output item
//! `response.output_item.added`, its content events (text parts, function
//! call arguments, reasoning summaries) and `response.output_item.done`, and
//! finally `response.completed` (or `response.incomplete` / `response.failed`).
//! Every event carries a `sequence_number`, starting at 0.

use ferrolite_types::openai::ChatChunk;
use ferrolite_types::Usage;
use serde_json::{json, Value};

use super::response::{
    function_call_item, message_item, new_id, reasoning_item, text_part, usage_of, Envelope,
};

/// Append one SSE event (`event:` line and JSON `data:`).
pub fn write_event(out: &mut Vec<u8>, kind: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Serializing a Value cannot fail.
    out.extend_from_slice(&serde_json::to_vec(data).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
}

/// The item being streamed right now.
#[derive(Debug)]
enum Open {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    Call {
        /// The chat tool call index it came from.
        index: u32,
        id: String,
        call_id: String,
        name: String,
        args: String,
    },
}

/// Turns one chat stream into Responses events.
pub struct ChatToResponses {
    env: Envelope,
    seq: u64,
    started: bool,
    open: Option<Open>,
    done: Vec<Value>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    finished: bool,
}

impl ChatToResponses {
    pub fn new(env: Envelope) -> Self {
        Self {
            env,
            seq: 0,
            started: false,
            open: None,
            done: Vec::new(),
            finish_reason: None,
            usage: None,
            finished: false,
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut data: Value) {
        if let Some(o) = data.as_object_mut() {
            o.insert("type".into(), Value::String(kind.into()));
            o.insert("sequence_number".into(), json!(self.seq));
        }
        self.seq += 1;
        write_event(out, kind, &data);
    }

    /// `response.created` and `response.in_progress`, once.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let r = self.env.response("in_progress", Vec::new(), None);
        self.emit(out, "response.created", json!({ "response": r }));
        let r = self.env.response("in_progress", Vec::new(), None);
        self.emit(out, "response.in_progress", json!({ "response": r }));
    }

    fn output_index(&self) -> usize {
        self.done.len()
    }

    /// Close the open item, if any.
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let idx = self.output_index();
        let item = match open {
            Open::Reasoning { id, text } => {
                let part = json!({"type": "summary_text", "text": text});
                self.emit(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": idx, "summary_index": 0, "text": text}),
                );
                self.emit(
                    out,
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id, "output_index": idx, "summary_index": 0, "part": part}),
                );
                reasoning_item(&id, &text)
            }
            Open::Message { id, text } => {
                self.emit(out, "response.output_text.done", json!({"item_id": id, "output_index": idx, "content_index": 0, "text": text, "logprobs": []}));
                self.emit(out, "response.content_part.done", json!({"item_id": id, "output_index": idx, "content_index": 0, "part": text_part(&text)}));
                message_item(&id, &text, "completed")
            }
            Open::Call {
                id,
                call_id,
                name,
                args,
                ..
            } => {
                self.emit(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": idx, "arguments": args}),
                );
                function_call_item(&id, &call_id, &name, &args, "completed")
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": idx, "item": item}),
        );
        self.done.push(item);
    }

    fn reasoning_delta(&mut self, delta: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close(out);
            let id = new_id("rs");
            let idx = self.output_index();
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": idx, "item": reasoning_item(&id, "")}),
            );
            self.emit(out, "response.reasoning_summary_part.added", json!({"item_id": id, "output_index": idx, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}));
            self.open = Some(Open::Reasoning {
                id,
                text: String::new(),
            });
        }
        let idx = self.output_index();
        if let Some(Open::Reasoning { id, text }) = &mut self.open {
            text.push_str(delta);
            let id = id.clone();
            self.emit(
                out,
                "response.reasoning_summary_text.delta",
                json!({"item_id": id, "output_index": idx, "summary_index": 0, "delta": delta}),
            );
        }
    }

    fn text_delta(&mut self, delta: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close(out);
            let id = new_id("msg");
            let idx = self.output_index();
            let item = json!({"id": id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"});
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": idx, "item": item}),
            );
            self.emit(out, "response.content_part.added", json!({"item_id": id, "output_index": idx, "content_index": 0, "part": text_part("")}));
            self.open = Some(Open::Message {
                id,
                text: String::new(),
            });
        }
        let idx = self.output_index();
        if let Some(Open::Message { id, text }) = &mut self.open {
            text.push_str(delta);
            let id = id.clone();
            self.emit(out, "response.output_text.delta", json!({"item_id": id, "output_index": idx, "content_index": 0, "delta": delta, "logprobs": []}));
        }
    }

    fn call_delta(&mut self, index: u32, call: &Value, out: &mut Vec<u8>) {
        let same = matches!(&self.open, Some(Open::Call { index: i, .. }) if *i == index);
        if !same {
            self.close(out);
            let id = new_id("fc");
            let call_id = call
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| new_id("call"), str::to_owned);
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let idx = self.output_index();
            self.emit(out, "response.output_item.added", json!({"output_index": idx, "item": function_call_item(&id, &call_id, &name, "", "in_progress")}));
            self.open = Some(Open::Call {
                index,
                id,
                call_id,
                name,
                args: String::new(),
            });
        }
        let Some(delta) = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        else {
            return;
        };
        let idx = self.output_index();
        if let Some(Open::Call { id, args, .. }) = &mut self.open {
            args.push_str(delta);
            let id = id.clone();
            self.emit(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": idx, "delta": delta}),
            );
        }
    }

    /// One chat chunk in.
    pub fn on_chunk(&mut self, chunk: &ChatChunk, out: &mut Vec<u8>) {
        self.start(out);
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.choices.first() else {
            return;
        };
        let d = &choice.delta;
        if let Some(r) = d
            .extra
            .get("reasoning_content")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            self.reasoning_delta(r, out);
        }
        if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
            self.text_delta(t, out);
        }
        for call in d.tool_calls.iter().flatten() {
            let v = serde_json::to_value(&call.call).unwrap_or_default();
            self.call_delta(call.index, &v, out);
        }
        if let Some(f) = &choice.finish_reason {
            self.finish_reason = Some(f.clone());
        }
    }

    pub fn saw_finish(&self) -> bool {
        self.finish_reason.is_some()
    }

    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// Usage the provider's translator kept without sending it as a chunk.
    pub fn set_usage_if_missing(&mut self, u: &Usage) {
        if self.usage.is_none() {
            self.usage = Some(u.clone());
        }
    }

    /// Close everything and send the final event. Returns the final response.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Value {
        self.start(out);
        self.close(out);
        if self.done.is_empty() {
            // OpenAI always answers with at least one message.
            self.text_delta("", out);
            self.close(out);
        }
        self.finished = true;
        let mut resp = self.env.response(
            "completed",
            self.done.clone(),
            self.usage.as_ref().map(usage_of),
        );
        let kind = if super::response::mark_incomplete(&mut resp, self.finish_reason.as_deref()) {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(out, kind, json!({ "response": resp.clone() }));
        resp
    }

    /// The stream failed: an `error` event, then `response.failed`.
    pub fn fail(&mut self, code: &str, message: &str, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.start(out);
        self.finished = true;
        self.emit(
            out,
            "error",
            json!({"code": code, "message": message, "param": null}),
        );
        let mut resp = self.env.response("failed", self.done.clone(), None);
        resp["error"] = json!({"code": code, "message": message});
        self.emit(out, "response.failed", json!({ "response": resp }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::responses::response::echo_of;
    use ferrolite_types::JsonMap;

    fn events(out: &[u8]) -> Vec<(String, Value)> {
        let text = std::str::from_utf8(out).unwrap();
        text.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let mut lines = f.lines();
                let ev = lines.next().unwrap().strip_prefix("event: ").unwrap();
                let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
                (ev.to_owned(), serde_json::from_str(data).unwrap())
            })
            .collect()
    }

    fn chunk(v: Value) -> ChatChunk {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn text_then_tool_call_stream() {
        let mut c = ChatToResponses::new(Envelope {
            id: "resp_x".into(),
            created_at: 1,
            model: "g".into(),
            echo: echo_of(&JsonMap::new()),
        });
        let mut out = Vec::new();
        for v in [
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "reasoning_content": "hm"}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "lo"}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get", "arguments": ""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}),
        ] {
            c.on_chunk(&chunk(v), &mut out);
        }
        let final_resp = c.finish(&mut out);
        let evs = events(&out);
        let kinds: Vec<&str> = evs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            vec![
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, (k, d)) in evs.iter().enumerate() {
            assert_eq!(d["sequence_number"], i as u64);
            assert_eq!(d["type"], k.as_str());
        }
        assert_eq!(evs[12].1["text"], "Hello");
        assert_eq!(evs[12].1["output_index"], 1);
        assert_eq!(evs[18].1["arguments"], "{\"a\":1}");
        assert_eq!(evs[18].1["output_index"], 2);
        let done = &evs[20].1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["usage"]["total_tokens"], 7);
        assert_eq!(done["output"][2]["call_id"], "call_1");
        assert_eq!(done, &final_resp);
    }

    #[test]
    fn failure_sends_error_then_failed() {
        let mut c = ChatToResponses::new(Envelope {
            id: "resp_x".into(),
            created_at: 1,
            model: "g".into(),
            echo: echo_of(&JsonMap::new()),
        });
        let mut out = Vec::new();
        c.on_chunk(
            &chunk(json!({"choices": [{"index": 0, "delta": {"content": "a"}}]})),
            &mut out,
        );
        c.fail("server_error", "boom", &mut out);
        let evs = events(&out);
        let n = evs.len();
        assert_eq!(evs[n - 2].0, "error");
        assert_eq!(evs[n - 2].1["message"], "boom");
        assert_eq!(evs[n - 1].0, "response.failed");
        assert_eq!(evs[n - 1].1["response"]["status"], "failed");
        assert_eq!(evs[n - 1].1["response"]["error"]["code"], "server_error");
    }
}
