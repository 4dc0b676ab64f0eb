//! Assembling a relayed stream into the answer it carried, for stored
//! prompts: the frames exactly as sent to the client go in, a JSON answer in
//! the client's dialect comes out — also for a stream that failed or that
//! the client left (what was relayed until then).
//!
//! Chat and completion chunks reuse the response cache's assembler; this
//! file adds Anthropic `/v1/messages` events, Responses events, and Gemini
//! (relayed as chat chunks inside the gateway, kept in Gemini's shape).

use ferrolite_types::openai::ChatResponse;
use ferrolite_types::sse::{SseEvent, SseParser};
use serde_json::{json, Map, Value};

use super::content::Dialect;
use crate::cache::settings::CallKind;
use crate::cache::stream::Assembler;

/// Collects a stream's frames into its answer.
pub(crate) trait Assemble: Send {
    /// Bytes exactly as relayed.
    fn feed(&mut self, bytes: &[u8]);
    /// The answer so far; `None` when nothing was relayed.
    fn finish(self: Box<Self>) -> Option<Value>;
}

/// The assembler for a dialect's streams (`None`: it never streams).
pub(crate) fn assembler(d: &Dialect<'_>) -> Option<Box<dyn Assemble>> {
    Some(match d {
        Dialect::Chat => Box::new(Assembler::new(CallKind::Chat)),
        Dialect::Completion => Box::new(Assembler::new(CallKind::Completion)),
        Dialect::Embedding => return None,
        Dialect::Messages => Box::new(Messages::default()),
        Dialect::Responses => Box::new(Responses::default()),
        Dialect::Gemini { model } => Box::new(Gemini {
            chat: Assembler::new(CallKind::Chat),
            model: (*model).to_owned(),
        }),
    })
}

impl Assemble for Assembler {
    fn feed(&mut self, bytes: &[u8]) {
        Assembler::feed(self, bytes);
    }

    fn finish(self: Box<Self>) -> Option<Value> {
        self.finish_partial()
    }
}

/// Chat chunks, kept as the Gemini answer the client was sent.
struct Gemini {
    chat: Assembler,
    model: String,
}

impl Assemble for Gemini {
    fn feed(&mut self, bytes: &[u8]) {
        self.chat.feed(bytes);
    }

    fn finish(self: Box<Self>) -> Option<Value> {
        let chat = self.chat.finish_partial()?;
        match serde_json::from_value::<ChatResponse>(chat.clone()) {
            Ok(r) => Some(crate::dialect::gemini::response::to_gemini(&r, &self.model)),
            Err(_) => Some(chat),
        }
    }
}

/// SSE events of a relayed stream, with their JSON data.
#[derive(Default)]
struct Events {
    parser: SseParser,
    buf: Vec<SseEvent>,
}

impl Events {
    fn feed(&mut self, bytes: &[u8], mut on: impl FnMut(&str, Value)) {
        if self.parser.feed(bytes, &mut self.buf).is_err() {
            self.parser = SseParser::new();
        }
        for ev in self.buf.drain(..) {
            let Ok(data) = serde_json::from_str::<Value>(ev.data.trim()) else {
                continue;
            };
            let kind = data
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or(ev.event)
                .unwrap_or_default();
            on(&kind, data);
        }
    }
}

fn append(o: &mut Map<String, Value>, key: &str, more: &str) {
    match o.get_mut(key) {
        Some(Value::String(s)) => s.push_str(more),
        _ => {
            o.insert(key.to_owned(), Value::String(more.to_owned()));
        }
    }
}

/// Anthropic Messages events into the `message` object they stream.
#[derive(Default)]
struct Messages {
    events: Events,
    message: Option<Map<String, Value>>,
    /// Content blocks by index, with the tool input JSON received so far.
    blocks: Vec<(u64, Map<String, Value>, String)>,
    error: Option<Value>,
}

impl Messages {
    fn on(&mut self, kind: &str, mut data: Value) {
        match kind {
            "message_start" => {
                if let Some(Value::Object(m)) = data.get_mut("message").map(Value::take) {
                    self.message = Some(m);
                }
            }
            "content_block_start" => {
                let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                let block = match data.get_mut("content_block").map(Value::take) {
                    Some(Value::Object(b)) => b,
                    _ => Map::new(),
                };
                self.blocks.push((index, block, String::new()));
            }
            "content_block_delta" => {
                let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                let Some((_, block, input)) = self.blocks.iter_mut().find(|(i, ..)| *i == index)
                else {
                    return;
                };
                let Some(delta) = data.get("delta") else {
                    return;
                };
                let text = |k: &str| delta.get(k).and_then(Value::as_str).unwrap_or_default();
                match delta
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                {
                    "text_delta" => append(block, "text", text("text")),
                    "thinking_delta" => append(block, "thinking", text("thinking")),
                    "signature_delta" => append(block, "signature", text("signature")),
                    "input_json_delta" => input.push_str(text("partial_json")),
                    _ => {}
                }
            }
            "message_delta" => {
                let m = self.message.get_or_insert_with(Map::new);
                if let Some(Value::Object(d)) = data.get("delta") {
                    for (k, v) in d {
                        m.insert(k.clone(), v.clone());
                    }
                }
                if let Some(Value::Object(u)) = data.get("usage") {
                    if let Value::Object(mu) = m
                        .entry("usage")
                        .or_insert_with(|| Value::Object(Map::new()))
                    {
                        for (k, v) in u {
                            mu.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            "error" => self.error = data.get_mut("error").map(Value::take),
            _ => {}
        }
    }
}

impl Assemble for Messages {
    fn feed(&mut self, bytes: &[u8]) {
        let mut events = std::mem::take(&mut self.events);
        events.feed(bytes, |kind, data| self.on(kind, data));
        self.events = events;
    }

    fn finish(self: Box<Self>) -> Option<Value> {
        let me = *self;
        if me.message.is_none() && me.blocks.is_empty() && me.error.is_none() {
            return None;
        }
        let mut m = me.message.unwrap_or_else(|| {
            let mut m = Map::new();
            m.insert("type".into(), json!("message"));
            m.insert("role".into(), json!("assistant"));
            m
        });
        let mut blocks = me.blocks;
        blocks.sort_by_key(|(i, ..)| *i);
        let content: Vec<Value> = blocks
            .into_iter()
            .map(|(_, mut b, input)| {
                if !input.is_empty() {
                    let v = serde_json::from_str(&input).unwrap_or(Value::String(input));
                    b.insert("input".into(), v);
                }
                Value::Object(b)
            })
            .collect();
        m.insert("content".into(), Value::Array(content));
        if let Some(e) = me.error {
            m.insert("error".into(), e);
        }
        Some(Value::Object(m))
    }
}

/// Responses events: the final `response` object when the stream carried
/// one (`response.completed`, `.incomplete`, `.failed`), else the last
/// response seen with the text streamed so far as `output_text`.
#[derive(Default)]
struct Responses {
    events: Events,
    last: Option<Value>,
    done: Option<Value>,
    text: String,
}

impl Assemble for Responses {
    fn feed(&mut self, bytes: &[u8]) {
        let mut events = std::mem::take(&mut self.events);
        events.feed(bytes, |kind, mut data| {
            if kind == "response.output_text.delta" {
                if let Some(t) = data.get("delta").and_then(Value::as_str) {
                    self.text.push_str(t);
                }
                return;
            }
            let Some(resp) = data.get_mut("response").map(Value::take) else {
                return;
            };
            match kind {
                "response.completed" | "response.incomplete" | "response.failed" => {
                    self.done = Some(resp);
                }
                _ => self.last = Some(resp),
            }
        });
        self.events = events;
    }

    fn finish(self: Box<Self>) -> Option<Value> {
        if let Some(done) = self.done {
            return Some(done);
        }
        if self.last.is_none() && self.text.is_empty() {
            return None;
        }
        let mut v = self.last.unwrap_or_else(|| json!({"object": "response"}));
        if let Some(o) = v.as_object_mut() {
            o.insert("output_text".into(), Value::String(self.text));
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(d: Dialect, frames: &[&str]) -> Option<Value> {
        let mut a = assembler(&d).unwrap();
        for f in frames {
            // Split each frame to check events may span reads.
            let (x, y) = f.as_bytes().split_at(f.len() / 2);
            a.feed(x);
            a.feed(y);
        }
        a.finish()
    }

    #[test]
    fn chat_chunks_with_text_and_tool_calls() {
        let v = run(
            Dialect::Chat,
            &[
                "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n",
                "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n",
                "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t1\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\"}}]}}]}\n\n",
                "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
            ],
        )
        .unwrap();
        let msg = &v["choices"][0]["message"];
        assert_eq!(msg["content"], "Hello");
        assert_eq!(msg["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn an_abandoned_chat_stream_keeps_what_was_relayed() {
        let v = run(
            Dialect::Chat,
            &["data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"partial\"}}]}\n\n"],
        )
        .unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "partial");
        assert!(run(Dialect::Chat, &[]).is_none());
    }

    #[test]
    fn anthropic_events() {
        let v = run(
            Dialect::Messages,
            &[
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"usage\":{\"input_tokens\":3}}}\n\n",
                "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \"}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"there\"}}\n\n",
                "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu\",\"name\":\"get\",\"input\":{}}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\"}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n",
                "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":7}}\n\n",
                "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            ],
        )
        .unwrap();
        assert_eq!(v["id"], "m1");
        assert_eq!(v["content"][0]["text"], "Hi there");
        assert_eq!(v["content"][1]["input"], json!({"city": "Paris"}));
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(v["usage"], json!({"input_tokens": 3, "output_tokens": 7}));
    }

    #[test]
    fn responses_events() {
        let created = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r1\",\"output\":[]}}\n\n";
        let delta = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hey\"}\n\n";
        let done = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r1\",\"output\":[{\"type\":\"message\"}],\"status\":\"completed\"}}\n\n";
        let v = run(Dialect::Responses, &[created, delta, done]).unwrap();
        assert_eq!(v["status"], "completed");
        let v = run(Dialect::Responses, &[created, delta]).unwrap();
        assert_eq!(v["id"], "r1");
        assert_eq!(v["output_text"], "Hey");
    }

    #[test]
    fn gemini_answers_are_kept_in_gemini_shape() {
        let v = run(
            Dialect::Gemini {
                model: "gem",
            },
            &[
                "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gem\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Ciao\"},\"finish_reason\":\"stop\"}]}\n\n",
                "data: [DONE]\n\n",
            ],
        )
        .unwrap();
        assert_eq!(
            v["candidates"][0]["content"]["parts"][0]["text"], "Ciao",
            "{v}"
        );
    }
}
