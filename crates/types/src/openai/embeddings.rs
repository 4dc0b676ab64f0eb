//! `POST /v1/embeddings`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::{JsonMap, Usage};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: Value,
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// An embedding list. `data` is kept as raw JSON: vectors are large and the
/// gateway never needs to look inside them.
#[derive(Debug, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    #[serde(default = "list_object")]
    pub object: String,
    pub data: Box<RawValue>,
    #[serde(default)]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

fn list_object() -> String {
    "list".to_owned()
}
