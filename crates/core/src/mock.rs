//! The built-in mock model: a deployment with `mock_response` in its
//! `litellm_params` answers locally, in the same wire format as a real
//! upstream, so a config runs with no provider keys at all.

use bytes::Bytes;
use ferrolite_types::openai::chat::describe;
use ferrolite_types::openai::chunk::{ChunkChoice, Delta};
use ferrolite_types::openai::completions::CompletionResponse;
use ferrolite_types::openai::embeddings::EmbeddingResponse;
use ferrolite_types::openai::{
    ChatChunk, ChatMessage, ChatRequest, ChatResponse, Choice, CompletionRequest, EmbeddingRequest,
};
use ferrolite_types::sse::{data_frame, DONE_FRAME};
use ferrolite_types::{JsonMap, Usage};
use serde_json::{json, Value};

/// A rough token count: about four characters a token.
pub fn estimate_tokens(text: &str) -> u64 {
    estimate_tokens_of_len(text.chars().count())
}

/// [`estimate_tokens`] for a text of `chars` characters.
pub fn estimate_tokens_of_len(chars: usize) -> u64 {
    (chars as u64).div_ceil(4).max(1)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn chat_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

fn prompt_tokens(req: &ChatRequest) -> u64 {
    let text: String = req
        .messages
        .iter()
        .filter_map(|m| m.content.as_ref().map(|c| c.text()))
        .collect();
    estimate_tokens(&text)
}

pub fn chat(content: &str, req: &ChatRequest, model: &str) -> ChatResponse {
    ChatResponse {
        id: chat_id(),
        object: "chat.completion".into(),
        created: now(),
        model: model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: ChatMessage::assistant_text(content),
            finish_reason: Some("stop".into()),
            extra: JsonMap::new(),
        }],
        usage: Some(Usage::new(prompt_tokens(req), estimate_tokens(content))),
        extra: JsonMap::new(),
    }
}

/// Split text into word-sized pieces, keeping the spaces, so a mock stream
/// looks like a real one.
fn pieces(content: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in content.char_indices() {
        if c == ' ' && i > start {
            out.push(&content[start..i]);
            start = i;
        }
    }
    if start < content.len() {
        out.push(&content[start..]);
    }
    out
}

fn frame<T: serde::Serialize>(v: &T) -> Bytes {
    Bytes::from(data_frame(&serde_json::to_vec(v).unwrap_or_default()))
}

pub fn chat_stream(content: &str, req: &ChatRequest, model: &str) -> Vec<Bytes> {
    let id = chat_id();
    let created = now();
    let chunk = |delta: Delta, finish: Option<&str>| ChatChunk {
        id: id.clone(),
        object: "chat.completion.chunk".into(),
        created,
        model: model.to_owned(),
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish.map(Into::into),
            extra: JsonMap::new(),
        }],
        usage: None,
        extra: JsonMap::new(),
    };
    let mut frames = Vec::new();
    let parts = pieces(content);
    if parts.is_empty() {
        frames.push(frame(&chunk(
            Delta {
                role: Some("assistant".into()),
                content: Some(String::new()),
                ..Default::default()
            },
            None,
        )));
    }
    for (i, p) in parts.iter().enumerate() {
        let role = (i == 0).then(|| "assistant".to_owned());
        frames.push(frame(&chunk(
            Delta {
                role,
                content: Some((*p).to_owned()),
                ..Default::default()
            },
            None,
        )));
    }
    frames.push(frame(&chunk(Delta::default(), Some("stop"))));
    if req.wants_stream_usage() {
        let mut u = chunk(Delta::default(), None);
        u.choices.clear();
        u.usage = Some(Usage::new(prompt_tokens(req), estimate_tokens(content)));
        frames.push(frame(&u));
    }
    frames.push(Bytes::from_static(DONE_FRAME));
    frames
}

fn prompt_text(prompt: &Value) -> String {
    match prompt {
        Value::Array(items) => items.iter().map(describe).collect::<Vec<_>>().join(""),
        other => describe(other),
    }
}

pub fn completion(content: &str, req: &CompletionRequest, model: &str) -> CompletionResponse {
    let mut extra = JsonMap::new();
    extra.insert(
        "id".into(),
        json!(format!("cmpl-{}", uuid::Uuid::new_v4().simple())),
    );
    extra.insert("object".into(), json!("text_completion"));
    extra.insert("created".into(), json!(now()));
    extra.insert(
        "choices".into(),
        json!([{"text": content, "index": 0, "logprobs": null, "finish_reason": "stop"}]),
    );
    CompletionResponse {
        model: model.to_owned(),
        usage: Some(Usage::new(
            estimate_tokens(&prompt_text(&req.prompt)),
            estimate_tokens(content),
        )),
        extra,
    }
}

pub fn completion_stream(content: &str, req: &CompletionRequest, model: &str) -> Vec<Bytes> {
    let id = format!("cmpl-{}", uuid::Uuid::new_v4().simple());
    let created = now();
    let mut frames: Vec<Bytes> = pieces(content)
        .iter()
        .map(|p| {
            frame(
                &json!({"id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"text": p, "index": 0, "logprobs": null, "finish_reason": null}]}),
            )
        })
        .collect();
    frames.push(frame(
        &json!({"id": id, "object": "text_completion", "created": created, "model": model,
        "choices": [{"text": "", "index": 0, "logprobs": null, "finish_reason": "stop"}]}),
    ));
    if req.wants_stream_usage() {
        let u = Usage::new(
            estimate_tokens(&prompt_text(&req.prompt)),
            estimate_tokens(content),
        );
        frames.push(frame(&json!({"id": id, "object": "text_completion", "created": created, "model": model, "choices": [], "usage": u})));
    }
    frames.push(Bytes::from_static(DONE_FRAME));
    frames
}

/// Dimensions of mock embeddings.
pub const MOCK_EMBEDDING_DIMS: usize = 8;

/// A deterministic unit-length vector for a text: the same input always
/// embeds the same, different inputs almost surely differ.
fn vector(text: &str) -> Vec<f32> {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    let raw: Vec<f32> = digest
        .iter()
        .take(MOCK_EMBEDDING_DIMS)
        .map(|b| f32::from(*b) / 255.0 - 0.5)
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    raw.into_iter().map(|x| x / norm).collect()
}

pub fn embedding(req: &EmbeddingRequest, model: &str) -> Result<EmbeddingResponse, String> {
    let inputs: Vec<String> = match &req.input {
        Value::Array(items) => items.iter().map(describe).collect(),
        other => vec![describe(other)],
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": vector(t)}))
        .collect();
    let tokens: u64 = inputs.iter().map(|t| estimate_tokens(t)).sum();
    let raw = serde_json::value::to_raw_value(&data).map_err(|e| e.to_string())?;
    let mut usage = Usage::new(tokens, 0);
    usage.completion_tokens = 0;
    Ok(EmbeddingResponse {
        object: "list".into(),
        data: raw,
        model: model.to_owned(),
        usage: Some(usage),
        extra: JsonMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_rejoin_to_the_content() {
        for s in ["", "one", "hello there  world", " lead"] {
            assert_eq!(pieces(s).concat(), s);
        }
    }

    #[test]
    fn mock_vectors_are_deterministic_unit_vectors() {
        let a = vector("x");
        assert_eq!(a, vector("x"));
        assert_ne!(a, vector("y"));
        let n: f32 = a.iter().map(|v| v * v).sum();
        assert!((n - 1.0).abs() < 1e-4);
    }
}
