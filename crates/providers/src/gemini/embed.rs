//! `/v1/embeddings` on Google AI Studio: `batchEmbedContents`, one
//! `EmbedContentRequest` per input, and the answer's `embeddings[].values`
//! back as an OpenAI embedding list. The input and parameter handling is
//! shared with Vertex AI's `predict` (see `vertex/embed.rs`).
//!
//! Vectors are never parsed: each `values` array is kept as raw JSON and
//! spliced into the OpenAI list as it came.

use bytes::Bytes;
use ferrolite_types::openai::embeddings::EmbeddingResponse;
use ferrolite_types::openai::EmbeddingRequest;
use ferrolite_types::{JsonMap, Usage};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::{BuildOptions, TranslateError};

fn bad(msg: impl Into<String>) -> TranslateError {
    TranslateError::BadRequest(msg.into())
}

/// A request parameter: the client's, else the deployment default; `null`
/// counts as unset.
pub(crate) fn param<'a>(
    req: &'a EmbeddingRequest,
    opts: &BuildOptions<'a>,
    keys: &[&str],
) -> Option<&'a Value> {
    keys.iter().find_map(|k| {
        req.extra
            .get(*k)
            .or_else(|| opts.defaults.and_then(|d| d.get(*k)))
            .filter(|v| !v.is_null())
    })
}

/// The inputs to embed, each as its text pieces: a string or a list of
/// strings gives one piece per input; a nested list of strings is one input
/// made of several pieces (Gemini embeds them together). Token-id inputs
/// cannot be sent to Google.
pub(crate) fn inputs(input: &Value) -> Result<Vec<Vec<String>>, TranslateError> {
    let token_ids = || {
        bad("Google embedding models take text input, not token ids; send `input` as a string or a list of strings")
    };
    match input {
        Value::String(s) => Ok(vec![vec![s.clone()]]),
        Value::Array(items) if items.is_empty() => Err(bad("`input` must not be empty")),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(vec![s.clone()]),
                Value::Array(sub) if sub.is_empty() => {
                    Err(bad("a nested `input` list must not be empty"))
                }
                Value::Array(sub) => sub
                    .iter()
                    .map(|p| p.as_str().map(str::to_owned).ok_or_else(token_ids))
                    .collect(),
                _ => Err(token_ids()),
            })
            .collect(),
        _ => Err(bad("`input` must be a string or a list of strings")),
    }
}

/// `dimensions` → `outputDimensionality` (Google's own spelling also
/// accepted), checked to be a positive integer.
pub(crate) fn dimensions<'a>(
    req: &'a EmbeddingRequest,
    opts: &BuildOptions<'a>,
) -> Result<Option<&'a Value>, TranslateError> {
    match param(
        req,
        opts,
        &[
            "dimensions",
            "outputDimensionality",
            "output_dimensionality",
        ],
    ) {
        Some(v) if v.as_u64().is_some_and(|n| n > 0) => Ok(Some(v)),
        Some(v) => Err(bad(format!(
            "`dimensions` must be a positive integer, got {v}"
        ))),
        None => Ok(None),
    }
}

/// The `batchEmbedContents` body.
pub(crate) fn batch_body(
    req: &EmbeddingRequest,
    model: &str,
    opts: BuildOptions<'_>,
) -> Result<Bytes, TranslateError> {
    let name = if model.starts_with("models/") {
        model.to_owned()
    } else {
        format!("models/{model}")
    };
    let mut shared = Map::new();
    if let Some(d) = dimensions(req, &opts)? {
        shared.insert("outputDimensionality".into(), d.clone());
    }
    if let Some(t) = param(req, &opts, &["task_type", "taskType", "input_type"]) {
        shared.insert("taskType".into(), t.clone());
    }
    if let Some(t) = param(req, &opts, &["title"]) {
        shared.insert("title".into(), t.clone());
    }
    let requests: Vec<Value> = inputs(&req.input)?
        .into_iter()
        .map(|pieces| {
            let parts: Vec<Value> = pieces.into_iter().map(|t| json!({ "text": t })).collect();
            let mut r = Map::new();
            r.insert("model".into(), Value::String(name.clone()));
            r.insert("content".into(), json!({ "parts": parts }));
            r.extend(shared.iter().map(|(k, v)| (k.clone(), v.clone())));
            Value::Object(r)
        })
        .collect();
    crate::params::encode(&json!({ "requests": requests }))
}

/// The OpenAI `data` list for these vectors, in order.
pub(crate) fn embedding_list<'a>(
    vectors: impl Iterator<Item = &'a RawValue>,
) -> Result<Box<RawValue>, TranslateError> {
    let mut out = String::from("[");
    for (i, v) in vectors.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"object":"embedding","index":"#);
        out.push_str(&i.to_string());
        out.push_str(r#","embedding":"#);
        out.push_str(v.get());
        out.push('}');
    }
    out.push(']');
    RawValue::from_string(out)
        .map_err(|e| TranslateError::InvalidResponse(format!("cannot build embedding list: {e}")))
}

pub(crate) fn list(data: Box<RawValue>, model: &str, prompt_tokens: u64) -> EmbeddingResponse {
    EmbeddingResponse {
        object: "list".to_owned(),
        data,
        model: model.to_owned(),
        usage: Some(Usage::new(prompt_tokens, 0)),
        extra: JsonMap::new(),
    }
}

#[derive(Deserialize)]
struct BatchResponse<'a> {
    #[serde(borrow, default)]
    embeddings: Vec<ContentEmbedding<'a>>,
    #[serde(default, rename = "usageMetadata")]
    usage_metadata: Option<BatchUsage>,
}

#[derive(Deserialize)]
struct ContentEmbedding<'a> {
    #[serde(borrow)]
    values: &'a RawValue,
}

#[derive(Deserialize)]
struct BatchUsage {
    #[serde(default, rename = "promptTokenCount")]
    prompt_token_count: u64,
}

/// A `batchEmbedContents` answer as an OpenAI embedding list.
/// `batchEmbedContents` reports no token counts (LiteLLM counts the input
/// with a local tokenizer); usage is 0 unless the answer carries
/// `usageMetadata`.
pub(crate) fn batch_response(
    body: &[u8],
    model: &str,
) -> Result<EmbeddingResponse, TranslateError> {
    let parsed: BatchResponse<'_> = serde_json::from_slice(body).map_err(|e| {
        TranslateError::InvalidResponse(format!("not a batchEmbedContents answer: {e}"))
    })?;
    let data = embedding_list(parsed.embeddings.iter().map(|e| e.values))?;
    let prompt = parsed.usage_metadata.map_or(0, |u| u.prompt_token_count);
    Ok(list(data, model, prompt))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::gemini::Gemini;
    use crate::{AuthScheme, Provider, ProviderKind, Target};

    fn target(model: &str) -> Target {
        Target {
            provider: "gemini".to_owned(),
            kind: ProviderKind::Gemini,
            model: model.to_owned(),
            api_base: "https://generativelanguage.googleapis.com".to_owned(),
            api_version: None,
            auth: AuthScheme::Header(http::HeaderName::from_static("x-goog-api-key")),
            stream_usage: false,
            headers: Vec::new(),
        }
    }

    fn req(v: Value) -> EmbeddingRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn batch_request() {
        let t = target("text-embedding-004");
        let r = req(json!({"model": "e", "input": ["a", ["b", "c"]], "dimensions": 64}));
        let up = Gemini
            .embedding_request(&r, &t, BuildOptions::default())
            .unwrap();
        assert_eq!(
            up.url,
            "https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:batchEmbedContents"
        );
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            body,
            json!({"requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 64},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}, {"text": "c"}]}, "outputDimensionality": 64}
            ]})
        );

        // Deployment defaults fill what the client did not set.
        let mut defaults = JsonMap::new();
        defaults.insert("task_type".into(), json!("RETRIEVAL_DOCUMENT"));
        let r = req(json!({"model": "e", "input": "x"}));
        let up = Gemini
            .embedding_request(
                &r,
                &target("models/gemini-embedding-001"),
                BuildOptions {
                    defaults: Some(&defaults),
                    stream_usage: false,
                },
            )
            .unwrap();
        assert!(up
            .url
            .ends_with("/v1beta/models/gemini-embedding-001:batchEmbedContents"));
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            body["requests"][0],
            json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "x"}]}, "taskType": "RETRIEVAL_DOCUMENT"})
        );

        let r = req(json!({"model": "e", "input": "x", "dimensions": "big"}));
        assert!(matches!(
            Gemini.embedding_request(&r, &t, BuildOptions::default()),
            Err(TranslateError::BadRequest(_))
        ));
        let r = req(json!({"model": "e", "input": [[1, 2]]}));
        assert!(matches!(
            Gemini.embedding_request(&r, &t, BuildOptions::default()),
            Err(TranslateError::BadRequest(_))
        ));
    }

    #[test]
    fn batch_answer() {
        let t = target("text-embedding-004");
        let body = br#"{"embeddings": [{"values": [0.25, -1e-3]}, {"values": [1, 2]}]}"#;
        let r = Gemini.parse_embedding_response(body, &t).unwrap();
        assert_eq!(
            r.data.get(),
            r#"[{"object":"embedding","index":0,"embedding":[0.25, -1e-3]},{"object":"embedding","index":1,"embedding":[1, 2]}]"#
        );
        assert_eq!(r.model, "text-embedding-004");
        assert_eq!(r.object, "list");
        assert_eq!(r.usage.as_ref().map(|u| u.total_tokens), Some(0));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["data"][1]["embedding"], json!([1, 2]));

        let with_usage =
            br#"{"embeddings": [{"values": [0.5]}], "usageMetadata": {"promptTokenCount": 7}}"#;
        let r = Gemini.parse_embedding_response(with_usage, &t).unwrap();
        assert_eq!(r.usage.as_ref().map(|u| u.prompt_tokens), Some(7));

        assert!(matches!(
            Gemini.parse_embedding_response(b"<html>", &t),
            Err(TranslateError::InvalidResponse(_))
        ));
    }
}
