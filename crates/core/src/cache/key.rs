//! The exact-match key: a SHA-256 over everything that changes the answer.
//!
//! In: the call type, the model group (after alias resolution; for a
//! wildcard group, the model the wildcard matched), and every request field
//! left once the gateway's own fields are gone — messages / prompt / input,
//! tools, tool_choice, response_format and every sampling parameter.
//! Out: the model name as sent (an alias and its target share entries),
//! `stream` and `stream_options` (a streamed and a JSON request share
//! entries; a hit is replayed in the form asked), `user`, and LiteLLM's
//! fields (`metadata`, `cache`, `num_retries`, … — removed before this runs).
//! The caller's key is never part of it.
//!
//! Object keys are hashed in sorted order, so the same request written with
//! its fields in another order has the same key.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Request fields that never change the answer.
const IGNORED: &[&str] = &["model", "stream", "stream_options", "user", "metadata"];

/// The hex SHA-256 key of a request (`body`: the request as JSON).
pub fn hash(call_type: &str, model: &str, body: &Value) -> String {
    let mut h = Sha256::new();
    h.update(b"ferrolite-cache-v1\0");
    h.update(call_type.as_bytes());
    h.update(b"\0");
    h.update(model.as_bytes());
    h.update(b"\0");
    match body {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o
                .keys()
                .filter(|k| !IGNORED.contains(&k.as_str()))
                .collect();
            keys.sort_unstable();
            h.update(b"{");
            for k in keys {
                feed_str(&mut h, k);
                feed(&mut h, &o[k.as_str()]);
            }
            h.update(b"}");
        }
        other => feed(&mut h, other),
    }
    hex::encode(h.finalize())
}

/// `<namespace>:<hash>`, or the hash alone.
pub fn with_namespace(namespace: Option<&str>, hash: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}:{hash}"),
        _ => hash.to_owned(),
    }
}

fn feed_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

/// An unambiguous encoding: a type tag, lengths before strings and counts
/// before containers.
fn feed(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.update(b"#");
            feed_str(h, &n.to_string());
        }
        Value::String(s) => {
            h.update(b"s");
            feed_str(h, s);
        }
        Value::Array(a) => {
            h.update(b"[");
            h.update((a.len() as u64).to_le_bytes());
            for x in a {
                feed(h, x);
            }
        }
        Value::Object(o) => {
            h.update(b"{");
            h.update((o.len() as u64).to_le_bytes());
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_unstable();
            for k in keys {
                feed_str(h, k);
                feed(h, &o[k.as_str()]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k(v: Value) -> String {
        hash("acompletion", "g", &v)
    }

    #[test]
    fn ignored_fields_and_field_order_do_not_change_the_key() {
        let a = k(json!({"messages":[{"role":"user","content":"hi"}],"temperature":0.2}));
        let b = k(
            json!({"temperature":0.2,"stream":true,"stream_options":{"include_usage":true},"user":"u1","model":"alias","messages":[{"content":"hi","role":"user"}]}),
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn what_changes_the_answer_changes_the_key() {
        let base = json!({"messages":[{"role":"user","content":"hi"}]});
        let a = k(base.clone());
        for (field, v) in [
            ("temperature", json!(0.1)),
            ("top_p", json!(0.5)),
            ("max_tokens", json!(5)),
            ("stop", json!(["x"])),
            ("seed", json!(1)),
            ("n", json!(2)),
            (
                "tools",
                json!([{"type":"function","function":{"name":"f"}}]),
            ),
            ("tool_choice", json!("auto")),
            ("response_format", json!({"type":"json_object"})),
        ] {
            let mut b = base.clone();
            b[field] = v;
            assert_ne!(k(b), a, "{field}");
        }
        assert_ne!(k(json!({"messages":[{"role":"user","content":"hi!"}]})), a);
        assert_ne!(hash("acompletion", "other", &base), a);
        assert_ne!(hash("aembedding", "g", &base), a);
        // Strings and numbers with the same text differ.
        assert_ne!(k(json!({"seed":"1"})), k(json!({"seed":1})));
    }

    #[test]
    fn namespaces_prefix_the_key() {
        assert_eq!(with_namespace(Some("ns"), "abc"), "ns:abc");
        assert_eq!(with_namespace(None, "abc"), "abc");
        assert_eq!(with_namespace(Some(""), "abc"), "abc");
    }
}
