//! Gemini inbound: Google's `generateContent`, `streamGenerateContent` and
//! `countTokens` for any configured model.
//!
//! A request is translated to the canonical chat request
//! ([`request::to_chat`]), runs through [`crate::pipeline::chat`] like any
//! other, and the answer is translated back ([`response::to_gemini`], or
//! [`stream::to_gemini_stream`] frame by frame). When the deployment is
//! itself Gemini the request still goes through chat (no passthrough):
//! function calls keep their thought signatures on the way, thought parts
//! in the history are dropped, and Google-only request fields
//! (`safetySettings`, `cachedContent`) are not forwarded.
//! `countTokens` is an estimate made locally ([`tokens`]).

pub mod error;
pub mod request;
pub mod response;
pub mod stream;
pub mod tokens;

use ferrolite_types::openai::ChatResponse;
use serde_json::{json, Value};

use crate::pipeline::{self, Answer, Outcome};
use crate::spend::content::{self, Dialect};
use crate::{Gateway, GatewayError, RequestContext};

pub use error::{error_body, google_error, status_name};
pub use request::GenerateContentRequest;
pub use stream::StreamFormat;

/// The method after the `:` in `models/{model}:{method}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Generate,
    Stream(StreamFormat),
    CountTokens,
}

impl Method {
    /// `name` is the part after the last `:`; `sse` whether `alt=sse` was
    /// asked.
    pub fn parse(name: &str, sse: bool) -> Option<Method> {
        match name {
            "generateContent" => Some(Method::Generate),
            "streamGenerateContent" => Some(Method::Stream(if sse {
                StreamFormat::Sse
            } else {
                StreamFormat::JsonArray
            })),
            "countTokens" => Some(Method::CountTokens),
            _ => None,
        }
    }
}

/// `models/{model}:{method}` (the part after `models/`) → (model, method
/// name). The model may itself hold `/` and `:` (`ollama/llama3:8b`).
pub fn split_model_action(rest: &str) -> Option<(&str, &str)> {
    let (model, action) = rest.rsplit_once(':')?;
    let model = model.strip_prefix("models/").unwrap_or(model);
    (!model.is_empty()).then_some((model, action))
}

/// Decode a Gemini request body, naming the field on a type error.
pub fn decode(bytes: &[u8]) -> Result<GenerateContentRequest, GatewayError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(GenerateContentRequest::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        GatewayError::BadRequest {
            message: format!("Invalid JSON payload received at '{path}': {}", e.inner()),
            param: Some(path),
        }
    })
}

/// What a Gemini request sent (`systemInstruction`, `contents`), for the
/// spend log when `store_prompts_in_spend_logs` is on; `None` otherwise.
pub fn kept_prompt(gw: &Gateway, body: &[u8]) -> Option<String> {
    content::prompt_with(gw, || match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => {
            content::pick(&m, &["systemInstruction", "system_instruction", "contents"])
        }
        _ => Value::Null,
    })
}

/// Run one Gemini call. The answer is a `GenerateContentResponse` (JSON),
/// a Gemini stream, or `{"totalTokens": N}` for `countTokens`.
pub async fn call(
    gw: &Gateway,
    ctx: &RequestContext,
    model: &str,
    method: Method,
    req: &GenerateContentRequest,
    prompt: Option<String>,
) -> Result<Outcome<Value>, GatewayError> {
    let stream = match method {
        Method::CountTokens => {
            if gw.router.resolve(model).is_none() {
                return Err(GatewayError::UnknownModel(format!(
                    "models/{model} is not found: no model group of that name is configured"
                )));
            }
            return Ok(Outcome {
                answer: Answer::Json(json!({ "totalTokens": tokens::estimate(req) })),
                meta: pipeline::AnswerMeta::default(),
            });
        }
        Method::Generate => None,
        Method::Stream(f) => Some(f),
    };
    let chat = request::to_chat(req, model, stream.is_some())?;
    let out = pipeline::chat_call(gw, ctx, chat).await;
    let kept = Dialect::Gemini { model };
    let out = content::keep(gw, ctx, prompt, out, kept, |a| {
        let parsed: ChatResponse;
        let chat = match a {
            Answer::Json(r) => r,
            Answer::Raw(raw) => {
                parsed = serde_json::from_slice(&raw.body).ok()?;
                &parsed
            }
            Answer::Stream(_) => return None,
        };
        serde_json::to_vec(&response::to_gemini(chat, model)).ok()
    })?;
    let answer = match (out.answer, stream) {
        (Answer::Json(r), _) => Answer::Json(response::to_gemini(&r, model)),
        (Answer::Raw(raw), _) => {
            let r = serde_json::from_slice(&raw.body).map_err(|e| {
                GatewayError::BadUpstreamResponse(format!("cannot read the upstream answer: {e}"))
            })?;
            Answer::Json(response::to_gemini(&r, model))
        }
        (Answer::Stream(frames), Some(format)) => {
            Answer::Stream(stream::to_gemini_stream(frames, model, format))
        }
        (Answer::Stream(frames), None) => {
            // Not asked for; translate anyway rather than fail.
            Answer::Stream(stream::to_gemini_stream(frames, model, StreamFormat::Sse))
        }
    };
    Ok(Outcome {
        answer,
        meta: out.meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_on_the_last_colon() {
        assert_eq!(
            split_model_action("gpt-4o:generateContent"),
            Some(("gpt-4o", "generateContent"))
        );
        assert_eq!(
            split_model_action("ollama/llama3:8b:streamGenerateContent"),
            Some(("ollama/llama3:8b", "streamGenerateContent"))
        );
        assert_eq!(
            split_model_action("models/x:countTokens"),
            Some(("x", "countTokens"))
        );
        assert_eq!(split_model_action("gpt-4o"), None);
        assert_eq!(split_model_action(":generateContent"), None);
        assert_eq!(
            Method::parse("streamGenerateContent", false),
            Some(Method::Stream(StreamFormat::JsonArray))
        );
        assert_eq!(Method::parse("embedContent", false), None);
    }
}
