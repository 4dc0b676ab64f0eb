//! What a call sent and answered, for its spend-log row
//! (`general_settings.store_prompts_in_spend_logs`, off by default).
//!
//! With the setting off, [`prompt`] returns `None` without looking at the
//! request and [`keep`] hands the outcome back untouched: nothing of the
//! content is read, copied or serialized.
//!
//! With it on, each public entry of the pipeline (chat, completions,
//! embeddings, `/v1/messages`, `/v1/responses`, Gemini) keeps:
//! - `messages`: the request's content as the client sent it — the
//!   `messages` list for chat, `prompt` for completions, `input` for
//!   embeddings, `{system, messages}` for `/v1/messages`, `{instructions,
//!   input}` for `/v1/responses`, `{systemInstruction, contents}` for Gemini;
//! - `response`: the answer as sent to the client (for a stream, the answer
//!   it streamed, assembled when it ends or the client leaves; embeddings
//!   keep none — vectors are large and say nothing to a reader).
//!
//! Each is JSON text of at most `maximum_spend_logs_content_bytes`
//! ([`bounded`]): long strings are cut in the middle with a marker, so a huge
//! prompt cannot bloat the database (or the spend queue in memory).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use ferrolite_types::JsonMap;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde_json::Value;

use super::content_stream::{assembler, Assemble};
use crate::meter::Meter;
use crate::pipeline::{Answer, FrameStream, Outcome};
use crate::{Gateway, GatewayError, RequestContext};

/// Which client dialect a call speaks: how its stream is assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect<'a> {
    Chat,
    Completion,
    /// No answer is kept.
    Embedding,
    /// Anthropic `/v1/messages`.
    Messages,
    Responses,
    /// Gemini, run through chat: a chat answer (JSON or chunks) kept in
    /// Gemini's shape for `model`.
    Gemini {
        model: &'a str,
    },
}

/// The most bytes of JSON kept per column, when content is kept at all.
fn limit(gw: &Gateway) -> Option<usize> {
    let s = &gw.config.general.spend.logs;
    s.store_prompts.then_some(s.max_content_bytes)
}

/// The request's content as bounded JSON text, when content is kept.
pub fn prompt<T: Serialize + ?Sized>(gw: &Gateway, v: &T) -> Option<String> {
    let max = limit(gw)?;
    let text = serde_json::to_vec(v).ok()?;
    Some(bounded(&text, max))
}

/// Like [`prompt`], with the value built only when content is kept.
pub fn prompt_with(gw: &Gateway, f: impl FnOnce() -> Value) -> Option<String> {
    let max = limit(gw)?;
    let text = serde_json::to_vec(&f()).ok()?;
    Some(bounded(&text, max))
}

/// The members `keys` of a request body that are present, as an object.
pub fn pick(body: &JsonMap, keys: &[&str]) -> Value {
    let mut out = JsonMap::new();
    for k in keys {
        if let Some(v) = body.get(*k).filter(|v| !v.is_null()) {
            out.insert((*k).to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// The JSON text of an answer that is not a stream (for [`keep`]).
pub fn json_or_raw<T: Serialize>(a: &Answer<T>) -> Option<Vec<u8>> {
    match a {
        Answer::Json(t) => serde_json::to_vec(t).ok(),
        Answer::Raw(raw) => Some(raw.body.to_vec()),
        Answer::Stream(_) => None,
    }
}

/// Put `prompt` and the answer of `out` into the call's record (a stream is
/// wrapped so that the answer it relayed is kept when it ends). `json`
/// gives the JSON text of a JSON or raw answer. Returns `out` untouched
/// when content is not kept.
pub fn keep<T>(
    gw: &Gateway,
    ctx: &RequestContext,
    prompt: Option<String>,
    out: Result<Outcome<T>, GatewayError>,
    dialect: Dialect<'_>,
    json: impl FnOnce(&Answer<T>) -> Option<Vec<u8>>,
) -> Result<Outcome<T>, GatewayError> {
    let Some(max) = limit(gw) else {
        return out;
    };
    let meter = &ctx.meter;
    if !meter.active() {
        return out;
    }
    if prompt.is_some() {
        meter.update(|r| r.messages = prompt);
    }
    let mut outcome = out?;
    if dialect == Dialect::Embedding {
        return Ok(outcome);
    }
    outcome.answer = match outcome.answer {
        Answer::Stream(inner) => match assembler(&dialect) {
            Some(asm) => Answer::Stream(Box::pin(Tap {
                inner,
                asm: Some(asm),
                meter: Arc::clone(meter),
                max,
            })),
            None => Answer::Stream(inner),
        },
        other => {
            if let Some(text) = json(&other) {
                let kept = bounded(&text, max);
                meter.update(|r| r.response = Some(kept));
            }
            other
        }
    };
    Ok(outcome)
}

/// Relays a stream unchanged, assembling the answer it carries; the answer
/// goes into the record when the stream ends or is dropped (the client
/// left). It holds the meter, so the record is emitted after that.
struct Tap {
    inner: FrameStream,
    asm: Option<Box<dyn Assemble>>,
    meter: Arc<Meter>,
    max: usize,
}

impl Tap {
    fn finish(&mut self) {
        let Some(asm) = self.asm.take() else {
            return;
        };
        if let Some(answer) = asm.finish() {
            if let Ok(text) = serde_json::to_vec(&answer) {
                let kept = bounded(&text, self.max);
                self.meter.update(|r| r.response = Some(kept));
            }
        }
    }
}

impl Stream for Tap {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = this.inner.poll_next_unpin(cx);
        match &next {
            Poll::Ready(Some(Ok(bytes))) => {
                if let Some(asm) = this.asm.as_mut() {
                    asm.feed(bytes);
                }
            }
            Poll::Ready(None) => this.finish(),
            Poll::Ready(Some(Err(never))) => match *never {},
            Poll::Pending => {}
        }
        next
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.finish();
    }
}

/// How a cut string is marked.
fn marker(cut: usize) -> String {
    format!("…[ferrolite truncated {cut} bytes]…")
}

/// The largest index `<= i` on a char boundary of `s`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest index `>= i` on a char boundary of `s`.
fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}

/// `s` cut to about `cap` bytes: its first third and last two thirds (the
/// end of a conversation tends to matter most), with a marker between.
fn cut_string(s: &str, cap: usize) -> String {
    let head = floor_boundary(s, cap / 3);
    let tail = ceil_boundary(s, s.len().saturating_sub(cap - cap / 3));
    if tail <= head {
        return s.to_owned();
    }
    let mut out = String::with_capacity(cap + 48);
    out.push_str(&s[..head]);
    out.push_str(&marker(tail - head));
    out.push_str(&s[tail..]);
    out
}

/// Every string of `v` longer than `cap` bytes cut to about `cap`.
fn cut_strings(v: &Value, cap: usize) -> Value {
    match v {
        Value::String(s) if s.len() > cap => Value::String(cut_string(s, cap)),
        Value::Array(a) => Value::Array(a.iter().map(|x| cut_strings(x, cap)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), cut_strings(x, cap)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// JSON text of at most `max` bytes standing for the JSON document `text`
/// (taken as it is when it fits). A longer document keeps its structure with
/// its long strings cut in the middle; when that is not enough (a huge list
/// of small values), it becomes one JSON string: the start of the document
/// and a marker. The result is always valid JSON.
pub fn bounded(text: &[u8], max: usize) -> String {
    let as_text = String::from_utf8_lossy(text);
    if as_text.len() <= max && serde_json::from_str::<serde::de::IgnoredAny>(&as_text).is_ok() {
        return as_text.into_owned();
    }
    if let Ok(v) = serde_json::from_str::<Value>(&as_text) {
        let mut cap = max / 2;
        while cap >= 64 {
            if let Ok(s) = serde_json::to_string(&cut_strings(&v, cap)) {
                if s.len() <= max {
                    return s;
                }
            }
            cap /= 2;
        }
    }
    // One JSON string: the document's start, then the marker. Escaping can
    // lengthen the text, so shrink the start until the string fits.
    let mut keep = max.saturating_sub(64);
    loop {
        let end = floor_boundary(&as_text, keep);
        let mut s = as_text[..end].to_owned();
        s.push_str(&marker(as_text.len() - end));
        let json = Value::String(s).to_string();
        if json.len() <= max || keep == 0 {
            return json;
        }
        keep /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn small_documents_are_kept_as_they_are() {
        let doc = br#"[{"role":"user","content":"hi <b>"}]"#;
        assert_eq!(bounded(doc, 1024), String::from_utf8_lossy(doc));
    }

    #[test]
    fn long_strings_are_cut_in_the_middle() {
        let long = format!("START{}END", "é".repeat(50_000));
        let doc = serde_json::to_vec(&json!([{"role": "user", "content": long}])).unwrap();
        let out = bounded(&doc, 4096);
        assert!(out.len() <= 4096, "{}", out.len());
        let v: Value = serde_json::from_str(&out).unwrap();
        let content = v[0]["content"].as_str().unwrap();
        assert!(content.starts_with("START"), "{content}");
        assert!(content.ends_with("END"), "{content}");
        assert!(content.contains("…[ferrolite truncated "), "{content}");
        assert_eq!(v[0]["role"], "user", "the structure is kept");
    }

    #[test]
    fn many_small_values_become_one_marked_string() {
        let doc = serde_json::to_vec(&json!({"input": vec![12345; 100_000]})).unwrap();
        let out = bounded(&doc, 2048);
        assert!(out.len() <= 2048, "{}", out.len());
        let v: Value = serde_json::from_str(&out).unwrap();
        let s = v.as_str().unwrap();
        assert!(s.starts_with("{\"input\":[12345,"), "{s}");
        assert!(s.contains("ferrolite truncated"), "{s}");
    }

    #[test]
    fn text_that_is_not_json_becomes_a_string() {
        let out = bounded(b"not json \"quoted\"", 1024);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(v.as_str().unwrap().starts_with("not json \"quoted\""));
        let out = bounded(&[b'"'; 10_000], 1024);
        assert!(out.len() <= 1024);
        assert!(serde_json::from_str::<Value>(&out).is_ok());
    }

    #[test]
    fn picks_the_members_present() {
        let body = json!({"system": "be brief", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5, "metadata": null});
        let v = pick(
            body.as_object().unwrap(),
            &["system", "messages", "metadata"],
        );
        assert_eq!(
            v,
            json!({"system": "be brief", "messages": [{"role": "user", "content": "x"}]})
        );
    }
}
