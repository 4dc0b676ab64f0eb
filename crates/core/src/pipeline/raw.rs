//! Forwarding an upstream's JSON without re-encoding it.
//!
//! When the upstream already speaks the canonical (OpenAI) format, the only
//! change the gateway makes to an answer or a stream chunk is `model`, which
//! must be the name the client asked for. Parsing the whole document into
//! typed structs and encoding it again costs more than everything else the
//! gateway does per request; instead the top-level `model` value is located
//! and spliced, and the few fields the gateway reads (`usage`, `choices`'
//! finish reasons, `error`) are read on the way.

use std::ops::Range;

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

/// What the gateway reads from an OpenAI-shaped document; everything else is
/// skipped without being built.
#[derive(Deserialize)]
pub(crate) struct Head<'a> {
    #[serde(borrow, default)]
    pub model: Option<&'a RawValue>,
    /// Kept raw: its position is needed to drop it, and `null` is common
    /// (so `null` is `Some("null")` here, not `None`).
    #[serde(borrow, default, deserialize_with = "present")]
    pub usage: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub choices: Option<Vec<ChoiceHead<'a>>>,
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct ChoiceHead<'a> {
    #[serde(default)]
    pub finish_reason: Option<serde::de::IgnoredAny>,
    /// Kept raw: only its length is used (estimating an abandoned stream's
    /// output tokens).
    #[serde(borrow, default)]
    pub delta: Option<&'a RawValue>,
}

/// Where a borrowed `RawValue` sits inside `body`.
pub(crate) fn span_of(body: &[u8], raw: &RawValue) -> Option<Range<usize>> {
    let s = raw.get();
    let start = (s.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start.checked_add(s.len())?;
    (end <= body.len()).then_some(start..end)
}

/// A member that is present, even as `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

impl Head<'_> {
    /// The usage, when present and not null.
    /// Only the counts are read: the details (`prompt_tokens_details`, …)
    /// stay in the forwarded body, and building them costs more than the
    /// rest of this parse.
    pub fn usage(&self) -> Option<Usage> {
        #[derive(Deserialize)]
        struct Counts {
            #[serde(default)]
            prompt_tokens: Option<u64>,
            #[serde(default)]
            completion_tokens: Option<u64>,
            #[serde(default)]
            total_tokens: Option<u64>,
        }
        let c: Counts = self
            .usage
            .filter(|u| u.get() != "null")
            .and_then(|u| serde_json::from_str(u.get()).ok())?;
        let mut usage = Usage::new(
            c.prompt_tokens.unwrap_or(0),
            c.completion_tokens.unwrap_or(0),
        );
        if let Some(t) = c.total_tokens {
            usage.total_tokens = t;
        }
        Some(usage)
    }
}

/// The bytes to delete to drop the top-level member `"key": <value at span>`,
/// with its separating comma; `None` if the text around it is not the plain
/// `"key"` followed by a colon (then the caller rebuilds the document).
pub(crate) fn member_range(body: &[u8], value: Range<usize>, key: &str) -> Option<Range<usize>> {
    let ws = |b: u8| b.is_ascii_whitespace();
    let mut i = value.start;
    while i > 0 && ws(body[i - 1]) {
        i -= 1;
    }
    if i == 0 || body[i - 1] != b':' {
        return None;
    }
    i -= 1;
    while i > 0 && ws(body[i - 1]) {
        i -= 1;
    }
    let quoted = format!("\"{key}\"");
    let key_start = i.checked_sub(quoted.len())?;
    if &body[key_start..i] != quoted.as_bytes() {
        return None;
    }
    let mut j = key_start;
    while j > 0 && ws(body[j - 1]) {
        j -= 1;
    }
    match body.get(j.checked_sub(1)?) {
        Some(b',') => Some(j - 1..value.end),
        Some(b'{') => {
            let mut k = value.end;
            while k < body.len() && ws(body[k]) {
                k += 1;
            }
            Some(
                key_start..if body.get(k) == Some(&b',') {
                    k + 1
                } else {
                    value.end
                },
            )
        }
        _ => None,
    }
}

/// Append `body` to `out` with its top-level model set to `name_json` and the
/// bytes in `cut` (a member to drop, not overlapping `span`) removed.
pub(crate) fn write_edited(
    body: &[u8],
    span: Option<Range<usize>>,
    name_json: &str,
    cut: Option<Range<usize>>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let Some(cut) = cut else {
        return write_with_model(body, span, name_json, out);
    };
    let mut rest = Vec::with_capacity(body.len());
    rest.extend_from_slice(&body[..cut.start]);
    rest.extend_from_slice(&body[cut.end..]);
    let span = span.map(|r| {
        if r.start >= cut.end {
            r.start - cut.len()..r.end - cut.len()
        } else {
            r
        }
    });
    write_with_model(&rest, span, name_json, out)
}

/// Append `body` to `out` with its top-level model set to `name_json` (a JSON
/// string literal): replaced at `span`, or inserted after the opening brace.
pub(crate) fn write_with_model(
    body: &[u8],
    span: Option<Range<usize>>,
    name_json: &str,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match span {
        Some(r) => {
            out.extend_from_slice(&body[..r.start]);
            out.extend_from_slice(name_json.as_bytes());
            out.extend_from_slice(&body[r.end..]);
        }
        None => {
            let brace = body
                .iter()
                .position(|b| *b == b'{')
                .ok_or("not a JSON object")?;
            out.extend_from_slice(&body[..=brace]);
            out.extend_from_slice(b"\"model\":");
            out.extend_from_slice(name_json.as_bytes());
            let rest = &body[brace + 1..];
            if rest
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b != b'}')
            {
                out.push(b',');
            }
            out.extend_from_slice(rest);
        }
    }
    Ok(())
}

/// Check `body` is a JSON object, read its `usage`, and set its top-level
/// `model` to `model` (inserting it when absent).
pub fn relabel(body: Bytes, model: &str) -> Result<RawJson, String> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("upstream answer is not a JSON object".into());
    }
    let head: Head<'_> =
        serde_json::from_slice(&body).map_err(|e| format!("invalid JSON from upstream: {e}"))?;
    let name = serde_json::to_string(model).map_err(|e| e.to_string())?;
    let span = match head.model {
        Some(raw) => Some(span_of(&body, raw).ok_or("cannot locate model in the upstream answer")?),
        None => None,
    };
    let usage = head.usage();
    if let Some(r) = &span {
        if &body[r.clone()] == name.as_bytes() {
            return Ok(RawJson { usage, body });
        }
    }
    let mut out = Vec::with_capacity(body.len() + name.len() + 10);
    write_with_model(&body, span, &name, &mut out)?;
    Ok(RawJson {
        body: BytesMut::from(&out[..]).freeze(),
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
    fn members_are_cut_with_their_comma() {
        let cut = |body: &str| -> Value {
            let b = body.as_bytes();
            let head: Head<'_> = serde_json::from_str(body).unwrap();
            let span = span_of(b, head.usage.unwrap()).unwrap();
            let r = member_range(b, span, "usage").unwrap();
            let mut out = Vec::new();
            write_edited(b, None, "\"m\"", Some(r), &mut out).unwrap();
            serde_json::from_slice(&out).unwrap()
        };
        assert_eq!(
            cut(r#"{"a":1,"usage":null,"b":2}"#),
            json!({"model":"m","a":1,"b":2})
        );
        assert_eq!(
            cut(r#"{"usage" : null , "b":2}"#),
            json!({"model":"m","b":2})
        );
        assert_eq!(
            cut(r#"{"a":1, "usage": {"x":1}}"#),
            json!({"model":"m","a":1})
        );
        assert_eq!(cut(r#"{"usage":null}"#), json!({"model":"m"}));
    }

    #[test]
    fn non_objects_are_errors() {
        assert!(relabel(Bytes::from_static(b"[1,2]"), "g").is_err());
        assert!(relabel(Bytes::from_static(b"not json"), "g").is_err());
        assert!(relabel(Bytes::from_static(b""), "g").is_err());
    }
}
