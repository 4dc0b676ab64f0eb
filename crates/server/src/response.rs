//! Encoding answers: JSON or SSE with LiteLLM's response headers, and errors
//! in the OpenAI shape.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use ferrolite_core::error::error_body;
use ferrolite_core::pipeline::{Answer, AnswerMeta, Outcome};
use ferrolite_core::{GatewayError, RequestContext, VERSION};
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;

/// An error on its way to the client.
pub struct ApiError {
    pub error: GatewayError,
    pub ctx: Option<RequestContext>,
}

impl From<GatewayError> for ApiError {
    fn from(error: GatewayError) -> Self {
        Self { error, ctx: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(&self.error, self.ctx.as_ref())
    }
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut r = Response::new(Body::from(bytes));
            *r.status_mut() = status;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => {
            tracing::error!("cannot encode a response: {e}");
            let mut r = Response::new(Body::from(
                r#"{"error":{"message":"internal error: cannot encode the response","type":"internal_server_error","param":null,"code":"500"}}"#,
            ));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
    }
}

pub fn error_response(e: &GatewayError, ctx: Option<&RequestContext>) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), error = e.label(), "{}", e);
    } else {
        tracing::debug!(status = status.as_u16(), error = e.label(), "{}", e);
    }
    let mut r = json_response(status, &error_body(e));
    let h = r.headers_mut();
    if let Some(ctx) = ctx {
        put(h, "x-litellm-call-id", &ctx.call_id);
    }
    put(h, "x-litellm-version", VERSION);
    if let Some(wait) = e.retry_after() {
        put(h, "retry-after", &wait.as_secs().max(1).to_string());
    }
    if e.retries() > 0
        || matches!(
            e,
            GatewayError::Upstream { .. }
                | GatewayError::Timeout { .. }
                | GatewayError::Connect { .. }
        )
    {
        put(h, "x-litellm-attempted-retries", &e.retries().to_string());
    }
    r
}

fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::try_from(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

fn put_num(h: &mut HeaderMap, name: &'static str, value: u64) {
    h.insert(HeaderName::from_static(name), HeaderValue::from(value));
}

/// Milliseconds with three decimals (integer formatting: cheaper than `{:.3}`).
fn put_ms(h: &mut HeaderMap, name: &'static str, ms: f64) {
    let micros = (ms.max(0.0) * 1000.0).round() as u64;
    put(h, name, &format!("{}.{:03}", micros / 1000, micros % 1000));
}

/// `x-litellm-response-cost` (when the answer's usage is known: JSON
/// answers) and, for virtual keys, `x-litellm-key-spend` (the key's spend
/// when the call was admitted) and `x-litellm-key-max-budget`.
pub fn cost_headers(h: &mut HeaderMap, ctx: &RequestContext, usage_known: bool) {
    if usage_known {
        if let Some(cost) = ctx.meter.cost_so_far() {
            put(h, "x-litellm-response-cost", &cost.to_string());
        }
    }
    let grant = ctx
        .principal
        .as_deref()
        .and_then(|p| p.held::<ferrolite_core::keys::Grant>());
    if let Some(g) = grant {
        put(h, "x-litellm-key-spend", &g.key_spend.to_string());
        if let Some(max) = g.key_max_budget {
            put(h, "x-litellm-key-max-budget", &max.to_string());
        }
    }
}

fn answer_headers(h: &mut HeaderMap, meta: &AnswerMeta, ctx: &RequestContext) {
    let total_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
    put(h, "x-litellm-call-id", &ctx.call_id);
    put(h, "x-litellm-model-id", &meta.model_id);
    put(h, "x-litellm-model-group", &meta.model_group);
    put(h, "x-litellm-model-name", &meta.upstream_model);
    if let Some(b) = &meta.api_base {
        put(h, "x-litellm-model-api-base", b);
    }
    put_ms(h, "x-litellm-response-duration-ms", total_ms);
    put_ms(
        h,
        "x-litellm-overhead-duration-ms",
        total_ms - meta.upstream_ms,
    );
    put_num(h, "x-litellm-attempted-retries", u64::from(meta.retries));
    put_num(
        h,
        "x-litellm-attempted-fallbacks",
        u64::from(meta.fallbacks),
    );
    put_num(h, "x-litellm-max-retries", u64::from(meta.max_retries));
    if meta.timeout_secs > 0.0 {
        put(h, "x-litellm-timeout", &meta.timeout_secs.to_string());
    }
    if let Some(r) = meta.remaining_requests {
        put_num(h, "x-ratelimit-remaining-requests", r);
    }
    if let Some(t) = meta.remaining_tokens {
        put_num(h, "x-ratelimit-remaining-tokens", t);
    }
    if let Some(k) = &meta.cache_key {
        put(h, "x-litellm-cache-key", k);
    }
    h.insert(
        HeaderName::from_static("x-litellm-version"),
        HeaderValue::from_static(VERSION),
    );
}

/// Encode a pipeline result.
pub fn respond<T: Serialize>(
    result: Result<Outcome<T>, GatewayError>,
    ctx: RequestContext,
) -> Response {
    match result {
        Err(error) => ApiError {
            error,
            ctx: Some(ctx),
        }
        .into_response(),
        Ok(Outcome {
            answer: Answer::Json(body),
            meta,
        }) => {
            let mut r = json_response(StatusCode::OK, &body);
            answer_headers(r.headers_mut(), &meta, &ctx);
            cost_headers(r.headers_mut(), &ctx, true);
            r
        }
        Ok(Outcome {
            answer: Answer::Raw(raw),
            meta,
        }) => {
            let mut r = Response::new(Body::from(raw.body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            answer_headers(r.headers_mut(), &meta, &ctx);
            cost_headers(r.headers_mut(), &ctx, true);
            r
        }
        Ok(Outcome {
            answer: Answer::Stream(stream),
            meta,
        }) => {
            let mut r = Response::new(Body::from_stream(stream));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream; charset=utf-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(
                HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            );
            answer_headers(h, &meta, &ctx);
            cost_headers(h, &ctx, false);
            r
        }
    }
}

pub fn json<T: Serialize>(body: &T) -> Response {
    json_response(StatusCode::OK, body)
}
