//! Streams and the cache.
//!
//! A cached answer is kept as the JSON answer (a `chat.completion` or
//! `text_completion` object), whether it came from a JSON or a streamed
//! call. A streamed miss is assembled from the frames relayed to the client
//! into that same object, rather than keeping the frames: a streamed and a
//! JSON request share an entry, and each hit is replayed in the form it asks
//! for — with the usage chunk only when that client asked for it with
//! `stream_options.include_usage`.

use bytes::Bytes;
use ferrolite_types::sse::{data_frame, DONE_FRAME};
use serde_json::{json, Map, Value};

use super::settings::CallKind;

/// SSE frames replaying a stored answer, `model` set to `model`.
pub fn replay(kind: CallKind, stored: &Value, model: &str, include_usage: bool) -> Vec<Bytes> {
    let mut frames = Vec::new();
    let head = |obj: &str| {
        let mut m = Map::new();
        m.insert(
            "id".into(),
            stored.get("id").cloned().unwrap_or(Value::Null),
        );
        m.insert("object".into(), json!(obj));
        m.insert(
            "created".into(),
            stored.get("created").cloned().unwrap_or(json!(0)),
        );
        m.insert("model".into(), json!(model));
        if let Some(fp) = stored.get("system_fingerprint").filter(|v| !v.is_null()) {
            m.insert("system_fingerprint".into(), fp.clone());
        }
        m
    };
    let push = |frames: &mut Vec<Bytes>, m: Map<String, Value>| {
        let text = serde_json::to_vec(&Value::Object(m)).unwrap_or_default();
        frames.push(Bytes::from(data_frame(&text)));
    };
    let choices = stored
        .get("choices")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match kind {
        CallKind::Completion => {
            for (i, c) in choices.iter().enumerate() {
                let mut m = head("text_completion");
                m.insert(
                    "choices".into(),
                    json!([{
                        "text": c.get("text").cloned().unwrap_or(json!("")),
                        "index": c.get("index").cloned().unwrap_or(json!(i)),
                        "logprobs": Value::Null,
                        "finish_reason": c.get("finish_reason").cloned().unwrap_or(Value::Null),
                    }]),
                );
                push(&mut frames, m);
            }
        }
        _ => {
            let obj = "chat.completion.chunk";
            for (i, c) in choices.iter().enumerate() {
                let index = c.get("index").cloned().unwrap_or(json!(i));
                let msg = c.get("message").and_then(Value::as_object);
                let mut delta = Map::new();
                delta.insert("role".into(), json!("assistant"));
                if let Some(msg) = msg {
                    for (k, v) in msg {
                        match k.as_str() {
                            "role" => {}
                            "tool_calls" => {
                                let calls: Vec<Value> = v
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .enumerate()
                                    .map(|(n, call)| {
                                        let mut call = call.clone();
                                        if let Some(o) = call.as_object_mut() {
                                            o.insert("index".into(), json!(n));
                                        }
                                        call
                                    })
                                    .collect();
                                delta.insert(k.clone(), Value::Array(calls));
                            }
                            _ if v.is_null() => {}
                            _ => {
                                delta.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                let mut m = head(obj);
                m.insert(
                    "choices".into(),
                    json!([{"index": index, "delta": delta, "logprobs": Value::Null, "finish_reason": Value::Null}]),
                );
                push(&mut frames, m);
                let mut m = head(obj);
                m.insert(
                    "choices".into(),
                    json!([{"index": index, "delta": {}, "logprobs": Value::Null,
                        "finish_reason": c.get("finish_reason").cloned().unwrap_or(json!("stop"))}]),
                );
                push(&mut frames, m);
            }
        }
    }
    if include_usage {
        if let Some(u) = stored.get("usage").filter(|u| !u.is_null()) {
            let obj = if kind == CallKind::Completion {
                "text_completion"
            } else {
                "chat.completion.chunk"
            };
            let mut m = head(obj);
            m.insert("choices".into(), json!([]));
            m.insert("usage".into(), u.clone());
            push(&mut frames, m);
        }
    }
    frames.push(Bytes::from_static(DONE_FRAME));
    frames
}

#[derive(Default)]
struct ChoiceAcc {
    text: String,
    reasoning: String,
    role: Option<String>,
    tool_calls: Vec<Value>,
    finish_reason: Value,
    extra: Map<String, Value>,
}

/// Collects relayed frames into the JSON answer they stream.
pub struct Assembler {
    kind: CallKind,
    pending: Vec<u8>,
    head: Map<String, Value>,
    choices: Vec<(u64, ChoiceAcc)>,
    usage: Option<Value>,
    done: bool,
    /// An error frame, or something unreadable: do not store.
    spoiled: bool,
}

impl Assembler {
    pub fn new(kind: CallKind) -> Self {
        Self {
            kind,
            pending: Vec::new(),
            head: Map::new(),
            choices: Vec::new(),
            usage: None,
            done: false,
            spoiled: false,
        }
    }

    /// Feed bytes exactly as sent to the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.spoiled {
            return;
        }
        self.pending.extend_from_slice(bytes);
        while let Some(end) = find(&self.pending, b"\n\n") {
            let frame: Vec<u8> = self.pending.drain(..end + 2).collect();
            self.frame(&frame[..end]);
        }
    }

    fn frame(&mut self, frame: &[u8]) {
        let Ok(text) = std::str::from_utf8(frame) else {
            self.spoiled = true;
            return;
        };
        for line in text.lines() {
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                self.done = true;
                continue;
            }
            match serde_json::from_str::<Value>(data) {
                Ok(Value::Object(chunk)) => self.chunk(chunk),
                _ => self.spoiled = true,
            }
        }
    }

    fn chunk(&mut self, mut chunk: Map<String, Value>) {
        if chunk.contains_key("error") {
            self.spoiled = true;
            return;
        }
        if let Some(u) = chunk.remove("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u);
        }
        let choices = chunk.remove("choices");
        for k in ["id", "created", "system_fingerprint", "service_tier"] {
            if let Some(v) = chunk.get(k).filter(|v| !v.is_null()) {
                self.head.entry(k).or_insert_with(|| v.clone());
            }
        }
        for c in choices
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let pos = match self.choices.iter().position(|(i, _)| *i == index) {
                Some(p) => p,
                None => {
                    self.choices.push((index, ChoiceAcc::default()));
                    self.choices.len() - 1
                }
            };
            let acc = &mut self.choices[pos].1;
            if let Some(f) = c.get("finish_reason").filter(|f| !f.is_null()) {
                acc.finish_reason = f.clone();
            }
            if let Some(t) = c.get("text").and_then(Value::as_str) {
                acc.text.push_str(t);
            }
            let Some(delta) = c.get("delta").and_then(Value::as_object) else {
                continue;
            };
            for (k, v) in delta {
                match k.as_str() {
                    "content" => acc.text.push_str(v.as_str().unwrap_or_default()),
                    "reasoning_content" => acc.reasoning.push_str(v.as_str().unwrap_or_default()),
                    "role" => acc.role = v.as_str().map(str::to_owned),
                    "tool_calls" => {
                        for call in v.as_array().into_iter().flatten() {
                            merge_tool_call(&mut acc.tool_calls, call);
                        }
                    }
                    _ if v.is_null() => {}
                    _ => {
                        acc.extra.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }

    /// The answer streamed so far, even when the stream failed or was
    /// abandoned (what the client saw; for stored prompts).
    pub fn finish_partial(mut self) -> Option<Value> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.frame(&rest);
        }
        self.done = true;
        self.spoiled = false;
        self.finish()
    }

    /// The whole answer, if the stream ended cleanly.
    pub fn finish(mut self) -> Option<Value> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.frame(&rest);
        }
        if self.spoiled || !self.done || self.choices.is_empty() {
            return None;
        }
        self.choices.sort_by_key(|(i, _)| *i);
        let mut out = self.head;
        let choices: Vec<Value> = match self.kind {
            CallKind::Completion => {
                out.insert("object".into(), json!("text_completion"));
                self.choices
                    .into_iter()
                    .map(|(i, c)| json!({"text": c.text, "index": i, "logprobs": null, "finish_reason": c.finish_reason}))
                    .collect()
            }
            _ => {
                out.insert("object".into(), json!("chat.completion"));
                self.choices
                    .into_iter()
                    .map(|(i, c)| {
                        let mut msg = c.extra;
                        msg.insert("role".into(), json!(c.role.unwrap_or_else(|| "assistant".into())));
                        let empty = c.text.is_empty() && !c.tool_calls.is_empty();
                        msg.insert("content".into(), if empty { Value::Null } else { json!(c.text) });
                        if !c.reasoning.is_empty() {
                            msg.insert("reasoning_content".into(), json!(c.reasoning));
                        }
                        if !c.tool_calls.is_empty() {
                            let calls = c
                                .tool_calls
                                .into_iter()
                                .map(|mut t| {
                                    if let Some(o) = t.as_object_mut() {
                                        o.remove("index");
                                    }
                                    t
                                })
                                .collect();
                            msg.insert("tool_calls".into(), Value::Array(calls));
                        }
                        json!({"index": i, "message": msg, "logprobs": null, "finish_reason": c.finish_reason})
                    })
                    .collect()
            }
        };
        out.insert("choices".into(), Value::Array(choices));
        if let Some(u) = self.usage {
            out.insert("usage".into(), u);
        }
        Some(Value::Object(out))
    }
}

/// Tool-call deltas: the first piece of a call carries its id, type and
/// name; later pieces with the same `index` append to its arguments.
fn merge_tool_call(calls: &mut Vec<Value>, piece: &Value) {
    let index = piece.get("index").and_then(Value::as_u64).unwrap_or(0);
    let existing = calls
        .iter_mut()
        .find(|c| c.get("index").and_then(Value::as_u64) == Some(index));
    let Some(call) = existing else {
        let mut call = piece.clone();
        if let Some(o) = call.as_object_mut() {
            o.insert("index".into(), json!(index));
            o.entry("type").or_insert(json!("function"));
        }
        calls.push(call);
        return;
    };
    let args = piece
        .get("function")
        .and_then(|f| f.get("arguments"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(f) = call.get_mut("function").and_then(Value::as_object_mut) {
        let joined = format!(
            "{}{args}",
            f.get("arguments")
                .and_then(Value::as_str)
                .unwrap_or_default()
        );
        f.insert("arguments".into(), json!(joined));
        if let Some(name) = piece
            .get("function")
            .and_then(|p| p.get("name"))
            .filter(|n| !n.is_null())
        {
            f.entry("name").or_insert(name.clone());
        }
    }
    if let Some(id) = piece.get("id").filter(|v| !v.is_null()) {
        if let Some(o) = call.as_object_mut() {
            o.entry("id").or_insert(id.clone());
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(chunks: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&data_frame(c.to_string().as_bytes()));
        }
        out.extend_from_slice(DONE_FRAME);
        out
    }

    fn payloads(frames: &[Bytes]) -> Vec<String> {
        frames
            .iter()
            .map(|f| {
                let s = std::str::from_utf8(f).unwrap();
                s.trim().strip_prefix("data: ").unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn a_chat_stream_assembles_into_the_answer_and_replays_back() {
        let chunks = [
            json!({"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}),
            json!({"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}),
            json!({"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}),
            json!({"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}),
            json!({"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}),
        ];
        let bytes = frames_of(&chunks);
        let mut a = Assembler::new(CallKind::Chat);
        // Split mid-frame: the assembler buffers.
        a.feed(&bytes[..37]);
        a.feed(&bytes[37..]);
        let v = a.finish().unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["id"], "c1");
        assert_eq!(v["choices"][0]["message"]["content"], "Hello");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["total_tokens"], 5);

        let p = payloads(&replay(CallKind::Chat, &v, "asked", false));
        assert_eq!(p.last().unwrap(), "[DONE]");
        let first: Value = serde_json::from_str(&p[0]).unwrap();
        assert_eq!(first["model"], "asked");
        assert_eq!(first["choices"][0]["delta"]["content"], "Hello");
        assert!(!p.iter().any(|c| c.contains("\"usage\"")));
        let p = payloads(&replay(CallKind::Chat, &v, "asked", true));
        let usage: Value = serde_json::from_str(&p[p.len() - 2]).unwrap();
        assert_eq!(usage["usage"]["total_tokens"], 5);
        assert_eq!(usage["choices"], json!([]));
    }

    #[test]
    fn tool_calls_are_merged_by_index() {
        let chunks = [
            json!({"id":"c","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]}}]}),
            json!({"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}),
            json!({"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}),
        ];
        let mut a = Assembler::new(CallKind::Chat);
        a.feed(&frames_of(&chunks));
        let v = a.finish().unwrap();
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["id"], "call_1");
        assert_eq!(call["function"]["arguments"], "{\"a\":1}");
        assert!(call.get("index").is_none());
        assert!(v["choices"][0]["message"]["content"].is_null());
        let p = payloads(&replay(CallKind::Chat, &v, "m", false));
        let first: Value = serde_json::from_str(&p[0]).unwrap();
        assert_eq!(first["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
    }

    #[test]
    fn unfinished_or_failed_streams_are_not_stored() {
        let mut a = Assembler::new(CallKind::Chat);
        a.feed(&data_frame(
            json!({"choices":[{"index":0,"delta":{"content":"x"}}]})
                .to_string()
                .as_bytes(),
        ));
        assert!(a.finish().is_none(), "no [DONE]");
        let mut a = Assembler::new(CallKind::Chat);
        a.feed(&frames_of(&[json!({"error":{"message":"boom"}})]));
        assert!(a.finish().is_none(), "error frame");
    }

    #[test]
    fn completions_round_trip() {
        let chunks = [
            json!({"id":"t","object":"text_completion","created":1,"choices":[{"text":"ab","index":0,"finish_reason":null}]}),
            json!({"id":"t","object":"text_completion","created":1,"choices":[{"text":"c","index":0,"finish_reason":"stop"}]}),
        ];
        let mut a = Assembler::new(CallKind::Completion);
        a.feed(&frames_of(&chunks));
        let v = a.finish().unwrap();
        assert_eq!(v["choices"][0]["text"], "abc");
        let p = payloads(&replay(CallKind::Completion, &v, "m", false));
        let first: Value = serde_json::from_str(&p[0]).unwrap();
        assert_eq!(first["object"], "text_completion");
        assert_eq!(first["choices"][0]["text"], "abc");
    }
}
