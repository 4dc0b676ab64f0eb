//! `/v1/embeddings` on Vertex AI: the text-embedding models' `predict`
//! (`text-embedding-005`, `text-multilingual-embedding-002`,
//! `gemini-embedding-001`, …).
//!
//! Request: one instance per input, `{"content": text}` plus `task_type` /
//! `title` when asked; `dimensions` → `parameters.outputDimensionality`,
//! `auto_truncate` → `parameters.autoTruncate`. Answer:
//! `predictions[i].embeddings.values`, with the input tokens summed from
//! `predictions[i].embeddings.statistics.token_count`.

use bytes::Bytes;
use ferrolite_types::openai::embeddings::EmbeddingResponse;
use ferrolite_types::openai::EmbeddingRequest;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::gemini::embed::{dimensions, embedding_list, inputs, list, param};
use crate::{BuildOptions, TranslateError};

fn bad(msg: impl Into<String>) -> TranslateError {
    TranslateError::BadRequest(msg.into())
}

pub(super) fn predict_body(
    req: &EmbeddingRequest,
    opts: BuildOptions<'_>,
) -> Result<Bytes, TranslateError> {
    let task_type = param(req, &opts, &["task_type", "taskType", "input_type"]);
    let title = param(req, &opts, &["title"]);
    let instances: Vec<Value> = inputs(&req.input)?
        .into_iter()
        .map(|mut pieces| {
            if pieces.len() != 1 {
                return Err(bad(
                    "Vertex AI text embedding models take one string per input; nested input lists are not supported",
                ));
            }
            let mut instance = Map::new();
            instance.insert("content".into(), Value::String(pieces.remove(0)));
            if let Some(t) = task_type {
                instance.insert("task_type".into(), t.clone());
            }
            if let Some(t) = title {
                instance.insert("title".into(), t.clone());
            }
            Ok(Value::Object(instance))
        })
        .collect::<Result<_, _>>()?;
    let mut parameters = Map::new();
    if let Some(d) = dimensions(req, &opts)? {
        parameters.insert("outputDimensionality".into(), d.clone());
    }
    if let Some(t) = param(req, &opts, &["auto_truncate", "autoTruncate"]) {
        parameters.insert("autoTruncate".into(), t.clone());
    }
    let mut body = json!({ "instances": instances });
    if !parameters.is_empty() {
        body["parameters"] = Value::Object(parameters);
    }
    crate::params::encode(&body)
}

#[derive(Deserialize)]
struct PredictResponse<'a> {
    #[serde(borrow, default)]
    predictions: Vec<Prediction<'a>>,
}

#[derive(Deserialize)]
struct Prediction<'a> {
    #[serde(borrow)]
    embeddings: Embeddings<'a>,
}

#[derive(Deserialize)]
struct Embeddings<'a> {
    #[serde(borrow)]
    values: &'a RawValue,
    #[serde(default)]
    statistics: Option<Statistics>,
}

#[derive(Deserialize)]
struct Statistics {
    /// A number, sometimes written as a float (`5.0`).
    #[serde(default)]
    token_count: Option<f64>,
}

pub(super) fn predict_response(
    body: &[u8],
    model: &str,
) -> Result<EmbeddingResponse, TranslateError> {
    let parsed: PredictResponse<'_> = serde_json::from_slice(body).map_err(|e| {
        TranslateError::InvalidResponse(format!("not a Vertex AI embedding answer: {e}"))
    })?;
    let tokens: f64 = parsed
        .predictions
        .iter()
        .filter_map(|p| p.embeddings.statistics.as_ref()?.token_count)
        .filter(|n| n.is_finite() && *n >= 0.0)
        .sum();
    let data = embedding_list(parsed.predictions.iter().map(|p| p.embeddings.values))?;
    // Token counts are whole numbers; the cast only drops a `.0`.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let tokens = tokens.round() as u64;
    Ok(list(data, model, tokens))
}
