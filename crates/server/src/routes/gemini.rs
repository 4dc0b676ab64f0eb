//! Google GenAI (Gemini) routes: `POST {prefix}/models/{model}:{method}`
//! with `generateContent`, `streamGenerateContent` (`?alt=sse` for SSE,
//! else a streamed JSON array) and `countTokens`, under `/v1beta`, `/v1`,
//! no prefix, and LiteLLM's `/gemini/v1beta` and `/gemini/v1`. Errors are in
//! Google's shape.
//!
//! axum cannot match a literal suffix after a capture (`{model}:generate…`),
//! so the rest of the path is captured whole and split on its last `:`.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use ferrolite_core::dialect::gemini::{self, Method};
use ferrolite_core::pipeline::Answer;
use ferrolite_core::{GatewayError, RequestContext, VERSION};
use http::{header, HeaderValue, StatusCode};

use crate::extract::Ctx;
use crate::response::{respond, ApiError};
use crate::state::AppState;

/// Every prefix the routes live under. `/models/{*id}` and
/// `/v1/models/{*id}` also answer `GET` (OpenAI's model retrieval); the
/// capture is named `id` there too so the routes merge.
const PREFIXES: &[&str] = &["/v1beta", "/v1", "", "/gemini/v1beta", "/gemini/v1"];

/// Methods this module serves.
const METHODS: &[&str] = &["generateContent", "streamGenerateContent", "countTokens"];

/// Add this module's routes.
pub fn routes(mut r: Router<AppState>) -> Router<AppState> {
    for prefix in PREFIXES {
        r = r.route(&format!("{prefix}/models/{{*id}}"), post(handle));
    }
    r
}

/// Whether a path is a Gemini call (its errors are Google-shaped, and it may
/// carry the key as `?key=`).
pub fn is_gemini_path(path: &str) -> bool {
    let Some((_, rest)) = path.split_once("/models/") else {
        return false;
    };
    let prefix = &path[..path.len() - rest.len() - "/models/".len()];
    PREFIXES.contains(&prefix)
        && rest
            .rsplit_once(':')
            .is_some_and(|(_, m)| METHODS.contains(&m))
}

/// The key of a Gemini call sent as `?key=` (Google's query parameter),
/// taken as written (API keys are URL-safe). Only Gemini paths accept it.
/// The value is never logged.
pub fn query_key(uri: &http::Uri) -> Option<&str> {
    if !is_gemini_path(uri.path()) {
        return None;
    }
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("key="))
        .filter(|k| !k.is_empty())
}

/// A Google-shaped error answer.
pub fn error_response(e: &GatewayError, ctx: Option<&RequestContext>) -> Response {
    let (code, body) = gemini::error_body(e);
    if code >= 500 {
        tracing::warn!(status = code, error = e.label(), "{}", e);
    } else {
        tracing::debug!(status = code, error = e.label(), "{}", e);
    }
    let mut r = Response::new(Body::from(serde_json::to_vec(&body).unwrap_or_default()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    h.insert("x-litellm-version", HeaderValue::from_static(VERSION));
    if let Some(id) = ctx.and_then(|c| HeaderValue::try_from(c.call_id.as_str()).ok()) {
        h.insert("x-litellm-call-id", id);
    }
    if let Some(wait) = e.retry_after() {
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        );
    }
    r
}

async fn handle(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ctx: Result<Ctx, ApiError>,
    req: Request,
) -> Response {
    let ctx = match ctx {
        Ok(Ctx(c)) => c,
        Err(e) => return error_response(&e.error, None),
    };
    let id = match path {
        Ok(Path(id)) => id,
        Err(e) => return error_response(&GatewayError::bad_request(e.body_text()), Some(&ctx)),
    };
    let sse = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|kv| kv == "alt=sse");
    let Some((model, method)) = gemini::split_model_action(&id)
        .and_then(|(m, a)| Method::parse(a, sse).map(|method| (m.to_owned(), method)))
    else {
        let e = GatewayError::NotFound(format!(
            "Route not found: POST {} (expected models/{{model}}:generateContent, :streamGenerateContent or :countTokens)",
            req.uri().path()
        ));
        return error_response(&e, Some(&ctx));
    };
    let limit = s.gw.max_request_bytes();
    let bytes = match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(b) => b,
        Err(e) => {
            let msg = format!("Could not read the request body (limit {limit} bytes): {e}");
            return error_response(&GatewayError::bad_request(msg), Some(&ctx));
        }
    };
    let body = match gemini::decode(&bytes) {
        Ok(b) => b,
        Err(e) => return error_response(&e, Some(&ctx)),
    };
    let prompt = match method {
        Method::CountTokens => None,
        _ => gemini::kept_prompt(&s.gw, &bytes),
    };
    match gemini::call(&s.gw, &ctx, &model, method, &body, prompt).await {
        Err(e) => error_response(&e, Some(&ctx)),
        Ok(out) => {
            let array = matches!(out.answer, Answer::Stream(_))
                && method == Method::Stream(gemini::StreamFormat::JsonArray);
            let mut r = respond(Ok(out), ctx);
            if array {
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=UTF-8"),
                );
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_paths_are_recognised() {
        assert!(is_gemini_path("/v1beta/models/gpt-4o:generateContent"));
        assert!(is_gemini_path(
            "/models/openai/gpt-4o:streamGenerateContent"
        ));
        assert!(is_gemini_path("/gemini/v1beta/models/x:countTokens"));
        assert!(!is_gemini_path("/v1/models/ft:gpt-4o:org:abc"));
        assert!(!is_gemini_path("/v1/chat/completions"));
        assert!(!is_gemini_path("/other/models/x:generateContent"));
    }
}
