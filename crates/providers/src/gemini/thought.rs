//! Thought signatures: opaque tokens Gemini attaches to `functionCall` parts
//! that must come back, unchanged and on the same part, when the history is
//! replayed (Gemini 3 rejects a turn whose first function call lacks one).
//!
//! OpenAI clients know nothing of them, so on the way out a signature rides
//! in two places: `provider_specific_fields.thought_signature` on the tool
//! call (for clients that keep unknown fields) and a `__thought__<sig>` suffix
//! on the tool-call id (for clients that only echo ids). On the way back in
//! either place is read, and the suffix never reaches the upstream.

use ferrolite_types::openai::chat::ToolCall;
use serde_json::{json, Value};

/// Joins a tool-call id and the signature embedded in it.
pub(crate) const SEPARATOR: &str = "__thought__";

/// Google's documented placeholder for function calls the model did not
/// produce itself: base64 of `skip_thought_signature_validator`.
pub(crate) const DUMMY_SIGNATURE: &str = "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I=";

/// `call_x` + signature → `call_x__thought__<sig>`.
pub(crate) fn encode_id(base: &str, signature: Option<&str>) -> String {
    match signature {
        Some(sig) if !sig.is_empty() => format!("{base}{SEPARATOR}{sig}"),
        _ => base.to_owned(),
    }
}

/// The id without its signature, and the signature if one is embedded.
pub(crate) fn split_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SEPARATOR) {
        Some((base, sig)) if !sig.is_empty() => (base, Some(sig)),
        Some((base, _)) => (base, None),
        None => (id, None),
    }
}

/// The id as the client first saw it, minus any embedded signature.
pub(crate) fn base_id(id: &str) -> &str {
    split_id(id).0
}

fn field_signature(extra: &ferrolite_types::JsonMap) -> Option<&str> {
    let fields = extra.get("provider_specific_fields")?;
    ["thought_signature", "thoughtSignature"]
        .iter()
        .find_map(|k| fields.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// The signature a replayed tool call carries: its
/// `provider_specific_fields` first (on the call, then on its function),
/// else the id suffix.
pub(crate) fn from_tool_call(call: &ToolCall) -> Option<&str> {
    field_signature(&call.extra)
        .or_else(|| {
            call.function
                .as_ref()
                .and_then(|f| field_signature(&f.extra))
        })
        .or_else(|| call.id.as_deref().and_then(|id| split_id(id).1))
}

/// `{"thought_signature": sig}`, as LiteLLM exposes it on a tool call.
pub(crate) fn provider_fields(signature: &str) -> Value {
    json!({ "thought_signature": signature })
}

/// Gemini 3 and later validate signatures on replayed function calls.
pub(crate) fn is_gemini_3_or_newer(model: &str) -> bool {
    model.match_indices("gemini-").any(|(at, m)| {
        let digits: String = model[at + m.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<u32>().is_ok_and(|major| major >= 3)
    })
}

/// Gemini 3 requires the first `functionCall` of each model step to be
/// signed. History from another model (or a client that dropped both the
/// field and the id suffix) gets Google's placeholder on that part only;
/// later parallel calls are never signed by Gemini either.
pub(crate) fn sign_first_call(parts: &mut [Value], model: &str) {
    if !is_gemini_3_or_newer(model) {
        return;
    }
    if let Some(first) = parts.iter_mut().find(|p| p.get("functionCall").is_some()) {
        if first.get("thoughtSignature").is_none() {
            if let Some(obj) = first.as_object_mut() {
                obj.insert("thoughtSignature".into(), Value::from(DUMMY_SIGNATURE));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(v: Value) -> ToolCall {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn dummy_is_base64_of_the_documented_marker() {
        // "skip_thought_signature_validator", base64 with padding.
        assert_eq!(
            DUMMY_SIGNATURE,
            "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="
        );
    }

    #[test]
    fn ids_round_trip_through_the_suffix() {
        let id = encode_id("call_abc", Some("U2lnMQ=="));
        assert_eq!(id, "call_abc__thought__U2lnMQ==");
        assert_eq!(split_id(&id), ("call_abc", Some("U2lnMQ==")));
        assert_eq!(base_id(&id), "call_abc");
        assert_eq!(encode_id("call_abc", None), "call_abc");
        assert_eq!(encode_id("call_abc", Some("")), "call_abc");
        assert_eq!(split_id("call_plain"), ("call_plain", None));
        assert_eq!(split_id("call_x__thought__"), ("call_x", None));
    }

    #[test]
    fn signature_prefers_provider_fields_then_function_fields_then_id() {
        let both = call(json!({
            "id": "call_1__thought__FROMID",
            "type": "function",
            "function": {"name": "f", "arguments": "{}"},
            "provider_specific_fields": {"thought_signature": "FROMFIELD"}
        }));
        assert_eq!(from_tool_call(&both), Some("FROMFIELD"));

        let nested = call(json!({
            "id": "call_1",
            "function": {"name": "f", "arguments": "{}",
                         "provider_specific_fields": {"thought_signature": "NESTED"}}
        }));
        assert_eq!(from_tool_call(&nested), Some("NESTED"));

        let id_only = call(json!({"id": "call_1__thought__FROMID", "function": {"name": "f"}}));
        assert_eq!(from_tool_call(&id_only), Some("FROMID"));

        let none = call(json!({"id": "call_1", "function": {"name": "f"}}));
        assert_eq!(from_tool_call(&none), None);
    }

    #[test]
    fn gemini_3_detection() {
        for m in [
            "gemini-3-pro-preview",
            "gemini-3-flash",
            "gemini-3.1-pro",
            "models/gemini-3-pro",
            "gemini-10-ultra",
        ] {
            assert!(is_gemini_3_or_newer(m), "{m}");
        }
        for m in [
            "gemini-2.5-flash",
            "gemini-2.0-flash-001",
            "gemini-1.5-pro",
            "gemini-exp-1206",
            "gpt-4o",
        ] {
            assert!(!is_gemini_3_or_newer(m), "{m}");
        }
    }

    #[test]
    fn placeholder_goes_on_the_first_unsigned_call_of_gemini_3_only() {
        let parts = || {
            vec![
                json!({"text": "let me look"}),
                json!({"functionCall": {"name": "a", "args": {}}}),
                json!({"functionCall": {"name": "b", "args": {}}}),
            ]
        };
        let mut p = parts();
        sign_first_call(&mut p, "gemini-3-pro-preview");
        assert!(p[0].get("thoughtSignature").is_none());
        assert_eq!(p[1]["thoughtSignature"], DUMMY_SIGNATURE);
        assert!(p[2].get("thoughtSignature").is_none());

        let mut old = parts();
        sign_first_call(&mut old, "gemini-2.5-flash");
        assert_eq!(old, parts());

        let mut signed = parts();
        signed[1]["thoughtSignature"] = json!("REAL");
        sign_first_call(&mut signed, "gemini-3-pro-preview");
        assert_eq!(signed[1]["thoughtSignature"], "REAL");
        assert!(signed[2].get("thoughtSignature").is_none());
    }
}
