//! Anthropic's Messages API: `POST /v1/messages` and
//! `POST /v1/messages/count_tokens`, for Claude Code, the Claude Agent SDK
//! and the `anthropic` SDKs. Answers and errors are in Anthropic's shape
//! (`{"type":"error","error":{"type","message"}}`), streams are Anthropic
//! SSE events.

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use ferrolite_core::dialect::anthropic::response;
use ferrolite_core::pipeline::{self, Answer, MessagesAnswer, MessagesRequest, Outcome, RawJson};
use ferrolite_core::{GatewayError, RequestContext};
use ferrolite_types::JsonMap;
use http::{header, HeaderMap, HeaderValue, StatusCode};

use crate::extract::{Ctx, JsonBody};
use crate::response::{error_response as openai_error_response, respond, ApiError};
use crate::state::AppState;

/// Paths answered in Anthropic's error shape, authentication failures
/// included.
pub fn is_anthropic_path(path: &str) -> bool {
    path == "/v1/messages" || path.starts_with("/v1/messages/")
}

/// Add this module's routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
}

/// An error in Anthropic's shape, with the gateway's usual headers
/// (`x-litellm-call-id`, `retry-after`, …).
pub fn error_response(e: &GatewayError, ctx: Option<&RequestContext>) -> Response {
    let (status, body) = response::error(e);
    let mut r = openai_error_response(e, ctx);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *r.body_mut() = Body::from(serde_json::to_vec(&body).unwrap_or_default());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn rejected(e: ApiError) -> Response {
    error_response(&e.error, e.ctx.as_ref())
}

/// The client headers Claude upstreams receive.
fn forwarded(headers: &HeaderMap) -> Vec<(http::HeaderName, HeaderValue)> {
    ["anthropic-version", "anthropic-beta"]
        .iter()
        .flat_map(|name| {
            headers
                .get_all(*name)
                .iter()
                .map(move |v| (http::HeaderName::from_static(name), v.clone()))
        })
        .collect()
}

fn answer(result: Result<Outcome<MessagesAnswer>, GatewayError>, ctx: RequestContext) -> Response {
    let outcome = match result {
        Ok(o) => o,
        Err(e) => return error_response(&e, Some(&ctx)),
    };
    let answer = match outcome.answer {
        Answer::Json(a) => Answer::Raw(RawJson {
            usage: a.usage().cloned(),
            body: a.into_bytes(),
        }),
        Answer::Raw(raw) => Answer::Raw(raw),
        Answer::Stream(s) => Answer::Stream(s),
    };
    respond::<()>(
        Ok(Outcome {
            answer,
            meta: outcome.meta,
        }),
        ctx,
    )
}

async fn messages(
    State(s): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    headers: HeaderMap,
    body: Result<JsonBody<JsonMap>, ApiError>,
) -> Response {
    let (Ctx(ctx), JsonBody(body)) = match (ctx, body) {
        (Ok(c), Ok(b)) => (c, b),
        (Err(e), _) | (_, Err(e)) => return rejected(e),
    };
    let req = MessagesRequest {
        body,
        headers: forwarded(&headers),
    };
    let result = pipeline::messages(&s.gw, &ctx, req).await;
    answer(result, ctx)
}

async fn count_tokens(
    State(s): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    body: Result<JsonBody<JsonMap>, ApiError>,
) -> Response {
    let (Ctx(ctx), JsonBody(body)) = match (ctx, body) {
        (Ok(c), Ok(b)) => (c, b),
        (Err(e), _) | (_, Err(e)) => return rejected(e),
    };
    let result = pipeline::count_tokens(&s.gw, &ctx, body).await;
    match result {
        Ok(Outcome {
            answer: Answer::Json(a),
            ..
        }) => {
            let mut r = Response::new(Body::from(a.into_bytes()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Ok(_) => error_response(
            &GatewayError::Internal("count_tokens gave no JSON answer".into()),
            Some(&ctx),
        ),
        Err(e) => error_response(&e, Some(&ctx)),
    }
    .into_response()
}
