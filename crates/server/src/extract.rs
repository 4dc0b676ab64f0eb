//! Request decoding with OpenAI-shaped errors: a body over the limit is 413,
//! malformed JSON or a wrong field is 400 naming the field.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use ferrolite_core::{GatewayError, RequestContext};
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::response::ApiError;
use crate::state::AppState;

/// A JSON body of type `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        // Azure-style and engine routes name the model in the path
        // (`/openai/deployments/{model}/chat/completions`): it wins over the body's.
        let path_model = RawPathParams::from_request_parts(&mut parts, state)
            .await
            .ok()
            .and_then(|p| {
                p.iter()
                    .find(|(k, _)| *k == "model")
                    .map(|(_, v)| v.to_owned())
            });
        let limit = state.gw.max_request_bytes();
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
            let too_big = std::error::Error::source(&e).is_some_and(|s| {
                s.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
            }) || e.to_string().contains("length limit");
            if too_big {
                GatewayError::PayloadTooLarge(format!(
                    "Request body is too large: the limit is {} MB",
                    limit / (1024 * 1024)
                ))
            } else {
                GatewayError::bad_request(format!("Could not read the request body: {e}"))
            }
        })?;
        let value = match path_model {
            None => return decode(&bytes).map(JsonBody).map_err(ApiError::from),
            Some(model) => {
                let mut v: serde_json::Value = decode(&bytes)?;
                match v.as_object_mut() {
                    Some(o) => o.insert("model".into(), serde_json::Value::String(model)),
                    None => {
                        return Err(
                            GatewayError::bad_request("Request body must be a JSON object").into(),
                        )
                    }
                };
                v
            }
        };
        serde_path_to_error::deserialize(value)
            .map(JsonBody)
            .map_err(|e| ApiError::from(field_error(e)))
    }
}

/// Decode JSON, naming the offending field on a type error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::bad_request(
            "Request body is empty: expected a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(field_error)
}

/// A 400 naming the field a decoding error is about.
fn field_error(e: serde_path_to_error::Error<serde_json::Error>) -> GatewayError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return GatewayError::bad_request(format!("Invalid JSON in request body: {inner}"));
    }
    let msg = inner.to_string();
    // A missing field is reported on the object that lacks it.
    let param = match msg
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    {
        Some(field) if path == "." => Some(field.to_owned()),
        Some(field) => Some(format!("{path}.{field}")),
        None if path == "." => None,
        None => Some(path.clone()),
    };
    let message = match &param {
        Some(p) => format!("Invalid request body at '{p}': {msg}"),
        None => format!("Invalid request body: {msg}"),
    };
    GatewayError::BadRequest { message, param }
}

fn header_secs(parts: &Parts, name: &str) -> Result<Option<Duration>, GatewayError> {
    let Some(v) = parts.headers.get(name) else {
        return Ok(None);
    };
    let s = v.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok());
    match s {
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(GatewayError::BadRequest {
            message: format!("header {name} must be a positive number of seconds"),
            param: None,
        }),
    }
}

/// The per-request context, with the `x-litellm-*` control headers read.
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut ctx = RequestContext::new();
        ctx.principal = parts
            .extensions
            .get::<std::sync::Arc<ferrolite_core::auth::Principal>>()
            .cloned();
        // With otel on (the layer adds the exporter): the request's trace.
        if let Some(otel) = parts
            .extensions
            .get::<std::sync::Arc<ferrolite_core::observe::otel::Otel>>()
        {
            let trace = otel.request(&parts.headers);
            ctx.meter.set_trace(std::sync::Arc::clone(&trace));
            ctx.trace = Some(trace);
        }
        ctx.timeout = header_secs(parts, "x-litellm-timeout")?;
        ctx.stream_timeout = header_secs(parts, "x-litellm-stream-timeout")?;
        ctx.cache_control = parts
            .headers
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(v) = parts
            .headers
            .get("x-litellm-tags")
            .and_then(|v| v.to_str().ok())
        {
            ctx.tags = v
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = parts.headers.get("x-litellm-num-retries") {
            ctx.num_retries = Some(
                v.to_str()
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| {
                        GatewayError::bad_request(
                            "header x-litellm-num-retries must be a non-negative integer",
                        )
                    })?,
            );
        }
        Ok(Ctx(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolite_types::openai::ChatRequest;

    #[test]
    fn decode_errors_name_the_field() {
        let e = decode::<ChatRequest>(br#"{"messages":[]}"#).unwrap_err();
        assert_eq!((e.status(), e.param()), (400, Some("model")));
        let e = decode::<ChatRequest>(br#"{"model":"m"}"#).unwrap_err();
        assert_eq!(e.param(), Some("messages"));
        let e = decode::<ChatRequest>(br#"{"model":"m","messages":"hi"}"#).unwrap_err();
        assert_eq!(e.param(), Some("messages"));
        let e =
            decode::<ChatRequest>(br#"{"model":"m","messages":[{"content":"x"}]}"#).unwrap_err();
        assert_eq!(e.param(), Some("messages[0].role"));
        let e = decode::<ChatRequest>(br#"{"model": 5, "messages": []}"#).unwrap_err();
        assert_eq!(e.param(), Some("model"));
        let e = decode::<ChatRequest>(b"{not json").unwrap_err();
        assert!(
            e.to_string().starts_with("Invalid JSON in request body"),
            "{e}"
        );
        assert!(decode::<ChatRequest>(b"  ")
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }
}
