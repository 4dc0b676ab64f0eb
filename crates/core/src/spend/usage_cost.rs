//! `litellm_settings.include_cost_in_streaming_usage`: the `usage` object of
//! a chat answer carries `cost` (USD), as LiteLLM adds it — in the JSON
//! answer's `usage`, and in the usage chunk of a stream (the one the client
//! asked for with `stream_options.include_usage`).
//!
//! Off by default, and then nothing here runs: the answer and the stream
//! relay are untouched. When on, a JSON answer is edited once, and each
//! stream frame is scanned for a `"usage"` member; only a frame that has one
//! (the last, usually) is parsed and written again.

use std::sync::Arc;

use bytes::Bytes;
use ferrolite_types::openai::ChatResponse;
use ferrolite_types::Usage;
use futures_util::StreamExt;
use serde_json::Value;

use super::Pricing;
use crate::meter::CallRecord;
use crate::pipeline::{Answer, AnswerMeta, Outcome};
use crate::Gateway;

/// Prices a usage for the deployment that answered.
struct Pricer {
    pricing: Arc<Pricing>,
    meta: AnswerMeta,
}

impl Pricer {
    fn cost(&self, usage: &Usage) -> Option<Value> {
        let rec = CallRecord {
            meta: self.meta.clone(),
            usage: Some(usage.clone()),
            // A cached answer costs nothing (as in the spend row).
            cache_hit: self.meta.cache_key.is_some(),
            ..Default::default()
        };
        serde_json::Number::from_f64(self.pricing.cost_of(&rec)).map(Value::Number)
    }

    /// Add `cost` to the `usage` object of a JSON document; `None` when
    /// there is none (or the text is not JSON).
    fn edit(&self, doc: &[u8]) -> Option<Vec<u8>> {
        let mut v: Value = serde_json::from_slice(doc).ok()?;
        let usage = v.get_mut("usage")?.as_object_mut()?;
        let parsed: Usage = serde_json::from_value(Value::Object(usage.clone())).ok()?;
        usage.insert("cost".into(), self.cost(&parsed)?);
        serde_json::to_vec(&v).ok()
    }

    /// The relay writes whole SSE frames per item: edit the one that
    /// carries usage, pass the rest as they are.
    fn edit_frames(&self, b: Bytes) -> Bytes {
        if !b.windows(7).any(|w| w == b"\"usage\"") {
            return b;
        }
        let Ok(text) = std::str::from_utf8(&b) else {
            return b;
        };
        let mut out = Vec::with_capacity(b.len() + 24);
        let mut changed = false;
        for frame in text.split_inclusive("\n\n") {
            let edited = frame
                .strip_prefix("data: ")
                .map(|rest| rest.trim_end_matches('\n'))
                .filter(|data| data.contains("\"usage\""))
                .and_then(|data| self.edit(data.as_bytes()));
            match edited {
                Some(json) => {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(&json);
                    out.extend_from_slice(b"\n\n");
                    changed = true;
                }
                None => out.extend_from_slice(frame.as_bytes()),
            }
        }
        if changed {
            Bytes::from(out)
        } else {
            b
        }
    }
}

/// Add `cost` to the usage of a chat answer when the setting is on.
pub(crate) fn add_to_chat(gw: &Gateway, outcome: &mut Outcome<ChatResponse>) {
    if !gw
        .config
        .litellm
        .proxy_budget
        .include_cost_in_streaming_usage
    {
        return;
    }
    let pricer = Pricer {
        pricing: Arc::clone(&gw.pricing),
        meta: outcome.meta.clone(),
    };
    match &mut outcome.answer {
        Answer::Json(r) => {
            if let Some(u) = r.usage.as_mut() {
                if let Some(c) = pricer.cost(u) {
                    u.extra.insert("cost".into(), c);
                }
            }
        }
        Answer::Raw(raw) => {
            if let Some(body) = pricer.edit(&raw.body) {
                raw.body = Bytes::from(body);
            }
        }
        Answer::Stream(s) => {
            let inner = std::mem::replace(s, futures_util::stream::empty().boxed());
            *s = inner
                .map(move |item| item.map(|b| pricer.edit_frames(b)))
                .boxed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricer() -> Pricer {
        let yaml = "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_key: k\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n    model_info:\n      id: dep-1\n";
        let env = crate::config::Env::isolated(Vec::<(String, String)>::new());
        let cfg = crate::config::load_str(yaml, std::path::Path::new("."), &env).unwrap();
        Pricer {
            pricing: Arc::new(Pricing::new(&cfg)),
            meta: AnswerMeta {
                model_id: "dep-1".into(),
                upstream_model: "openai/x".into(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn only_the_usage_frame_is_edited() {
        let p = pricer();
        let text = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15}}\n\ndata: [DONE]\n\n";
        let out = p.edit_frames(Bytes::from(text));
        let out = std::str::from_utf8(&out).unwrap();
        let frames: Vec<&str> = out.split("\n\n").collect();
        assert_eq!(frames[0], text.split("\n\n").next().unwrap());
        let usage: Value = serde_json::from_str(frames[1].strip_prefix("data: ").unwrap()).unwrap();
        let cost = usage["usage"]["cost"].as_f64().unwrap();
        assert!((cost - 0.02).abs() < 1e-12, "{cost}");
        assert_eq!(frames[2], "data: [DONE]");
        // Frames without usage come back as the very same bytes.
        let plain = Bytes::from_static(b"data: {\"choices\":[]}\n\n");
        assert_eq!(p.edit_frames(plain.clone()), plain);
    }

    #[test]
    fn a_cached_answer_costs_zero() {
        let mut p = pricer();
        p.meta.cache_key = Some("k".into());
        let out = p
            .edit(br#"{"usage":{"prompt_tokens":10,"completion_tokens":5}}"#)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["usage"]["cost"], 0.0);
    }
}
