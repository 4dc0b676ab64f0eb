//! `countTokens` without calling any upstream: an estimate.
//!
//! Text (parts, the system instruction, function calls and responses as
//! JSON, tool declarations as JSON) counts about four characters a token,
//! the same estimate the gateway uses elsewhere; every image, audio, video
//! or file part counts a flat 258 tokens, Gemini's charge for one image.
//! The count is only as good as that rule: it is meant for budgeting, not
//! billing.

use serde_json::Value;

use super::request::{Content, GenerateContentRequest};
use crate::mock::estimate_tokens_of_len;

/// Tokens Gemini charges for one image (and the flat estimate for any media).
pub const MEDIA_TOKENS: u64 = 258;

fn json_len(v: &Value) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.chars().count())
}

fn count_contents(contents: &[Content], chars: &mut usize, media: &mut u64) {
    for c in contents {
        for p in &c.parts {
            if let Some(t) = &p.text {
                *chars += t.chars().count();
            }
            if let Some(fc) = &p.function_call {
                *chars += fc.name.len() + fc.args.as_ref().map_or(0, json_len);
            }
            if let Some(fr) = &p.function_response {
                *chars += fr.name.len() + fr.response.as_ref().map_or(0, json_len);
            }
            if p.inline_data.is_some() || p.file_data.is_some() {
                *media += MEDIA_TOKENS;
            }
        }
    }
}

/// The estimated prompt tokens of a `countTokens` body (`contents`, or a
/// whole `generateContentRequest`).
pub fn estimate(req: &GenerateContentRequest) -> u64 {
    let mut chars = 0usize;
    let mut media = 0u64;
    let add = |r: &GenerateContentRequest, chars: &mut usize, media: &mut u64| {
        count_contents(&r.contents, chars, media);
        if let Some(s) = &r.system_instruction {
            *chars += super::request::system_text_len(s);
        }
        for t in &r.tools {
            for f in &t.function_declarations {
                *chars += f.name.len() + f.description.as_ref().map_or(0, |d| d.chars().count());
                *chars += f
                    .parameters
                    .as_ref()
                    .or(f.parameters_json_schema.as_ref())
                    .map_or(0, json_len);
            }
        }
    };
    add(req, &mut chars, &mut media);
    if let Some(inner) = &req.generate_content_request {
        add(inner, &mut chars, &mut media);
    }
    if chars == 0 {
        return media;
    }
    estimate_tokens_of_len(chars) + media
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_media_are_counted() {
        let r: GenerateContentRequest = serde_json::from_value(json!({
            "contents": [{"role": "user", "parts": [{"text": "abcdefgh"}, {"inlineData": {"mimeType": "image/png", "data": "xx"}}]}]
        }))
        .unwrap();
        assert_eq!(estimate(&r), 2 + MEDIA_TOKENS);
        let wrapped: GenerateContentRequest = serde_json::from_value(json!({
            "generateContentRequest": {"model": "models/x", "contents": [{"parts": [{"text": "abcd"}]}],
                "systemInstruction": {"parts": [{"text": "abcd"}]}}
        }))
        .unwrap();
        assert_eq!(estimate(&wrapped), 2);
        assert_eq!(estimate(&GenerateContentRequest::default()), 0);
    }
}
