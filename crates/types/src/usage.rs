//! Token usage as OpenAI reports it.

use serde::{Deserialize, Serialize};

use crate::JsonMap;

/// OpenAI `usage`. Unknown detail fields (`prompt_tokens_details`, provider
/// extras) are kept in `extra`.
///
/// Deserialization is written by hand: `#[serde(flatten)]` buffers every
/// field through an intermediate representation, and usage is read on every
/// answer the gateway forwards.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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

impl<'de> Deserialize<'de> for Usage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Usage;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a usage object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Usage, A::Error> {
                let mut u = Usage::default();
                while let Some(key) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    let count = |v: Option<u64>| v.unwrap_or(0);
                    match key.as_ref() {
                        "prompt_tokens" => u.prompt_tokens = count(m.next_value()?),
                        "completion_tokens" => u.completion_tokens = count(m.next_value()?),
                        "total_tokens" => u.total_tokens = count(m.next_value()?),
                        other => {
                            let v: serde_json::Value = m.next_value()?;
                            u.extra.insert(other.to_owned(), v);
                        }
                    }
                }
                Ok(u)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_counts_and_extras_round_trip() {
        let text = r#"{"prompt_tokens":9,"completion_tokens":null,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":4},"cost":0.5}"#;
        let u: Usage = serde_json::from_str(text).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (9, 0, 21)
        );
        assert_eq!(u.extra["prompt_tokens_details"]["cached_tokens"], 4);
        let back = serde_json::to_value(&u).unwrap();
        assert_eq!(back["cost"], 0.5);
        assert_eq!(back["completion_tokens"], 0);
        assert!(serde_json::from_str::<Usage>("[1]").is_err());
    }
}
