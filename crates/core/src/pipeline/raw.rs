//! Forwarding an upstream's JSON answer without re-encoding it.
//!
//! When the upstream already speaks the canonical (OpenAI) format, the only
//! change the gateway makes to a non-streamed answer is `model`, which must be
//! the name the client asked for. Parsing the whole answer into typed structs
//! and encoding it again costs more than everything else the gateway does per
//! request; instead the top-level `model` value is located and spliced, and
//! `usage` is read on the way.

use bytes::{Bytes, BytesMut};
use ferrolite_types::Usage;
use serde::Deserialize;
use serde_json::value::RawValue;

/// An upstream answer ready to send as it is.
#[derive(Debug, Clone)]
pub struct RawJson {
    pub body: Bytes,
    pub usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    usage: Option<Usage>,
}

/// Check `body` is a JSON object, read its `usage`, and set its top-level
/// `model` to `model` (inserting it when absent).
pub fn relabel(body: Bytes, model: &str) -> Result<RawJson, String> {
    let head: Head<'_> =
        serde_json::from_slice(&body).map_err(|e| format!("invalid JSON from upstream: {e}"))?;
    let usage = head.usage;
    let name = serde_json::to_string(model).map_err(|e| e.to_string())?;
    let base = body.as_ptr() as usize;
    let (start, end) = match head.model {
        Some(raw) => {
            let s = raw.get();
            let start = (s.as_ptr() as usize).wrapping_sub(base);
            let end = start + s.len();
            if end > body.len() {
                return Err("cannot locate model in the upstream answer".into());
            }
            (start, end)
        }
        None => {
            // No model: insert one right after the opening brace.
            let brace = body
                .iter()
                .position(|b| *b == b'{')
                .ok_or("upstream answer is not a JSON object")?;
            let mut out = BytesMut::with_capacity(body.len() + name.len() + 10);
            out.extend_from_slice(&body[..=brace]);
            out.extend_from_slice(b"\"model\":");
            out.extend_from_slice(name.as_bytes());
            let rest = &body[brace + 1..];
            if rest
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b != b'}')
            {
                out.extend_from_slice(b",");
            }
            out.extend_from_slice(rest);
            return Ok(RawJson {
                body: out.freeze(),
                usage,
            });
        }
    };
    if &body[start..end] == name.as_bytes() {
        return Ok(RawJson { body, usage });
    }
    let mut out = BytesMut::with_capacity(body.len() - (end - start) + name.len());
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&body[end..]);
    Ok(RawJson {
        body: out.freeze(),
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn run(body: &str, model: &str) -> Value {
        let r = relabel(Bytes::from(body.to_owned()), model).unwrap();
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn only_the_top_level_model_changes() {
        let body = r#"{"id":"x","model" : "gpt-4o-2024","choices":[{"message":{"model":"inner","content":"a \"model\": b"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        let v = run(body, "my-group");
        assert_eq!(v["model"], "my-group");
        assert_eq!(v["choices"][0]["message"]["model"], "inner");
        assert_eq!(v["choices"][0]["message"]["content"], "a \"model\": b");
        let r = relabel(Bytes::from(body), "g").unwrap();
        assert_eq!(r.usage.unwrap().total_tokens, 5);
    }

    #[test]
    fn names_are_json_escaped_and_missing_models_inserted() {
        assert_eq!(
            run(r#"{"model":"a"}"#, "we\"ird/name")["model"],
            "we\"ird/name"
        );
        assert_eq!(run(r#"{"id":"1"}"#, "g"), json!({"model":"g","id":"1"}));
        assert_eq!(run(r#"{ }"#, "g"), json!({"model":"g"}));
        assert_eq!(
            run("{\"model\":\"same\",\"x\":1}", "same"),
            json!({"model":"same","x":1})
        );
    }

    #[test]
    fn non_objects_are_errors() {
        assert!(relabel(Bytes::from_static(b"[1,2]"), "g").is_err());
        assert!(relabel(Bytes::from_static(b"not json"), "g").is_err());
        assert!(relabel(Bytes::from_static(b""), "g").is_err());
    }
}
