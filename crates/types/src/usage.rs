//! Token usage as OpenAI reports it.

use serde::{Deserialize, Serialize};

use crate::JsonMap;

/// OpenAI `usage`. Unknown detail fields (`prompt_tokens_details`, provider
/// extras) are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            extra: JsonMap::new(),
        }
    }
}
