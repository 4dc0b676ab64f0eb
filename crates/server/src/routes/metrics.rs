//! `GET /metrics`: Prometheus exposition, when `litellm_settings.callbacks`
//! names `prometheus`. On the main port it needs a key unless
//! `require_auth_for_metrics_endpoint: false` (LiteLLM's default is to
//! require one); `--prometheus_metrics_port` serves it alone, without auth,
//! on a second port.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrolite_core::observe::metrics::CONTENT_TYPE;
use ferrolite_core::GatewayError;
use http::{header, HeaderValue, StatusCode};

use crate::response::ApiError;
use crate::state::AppState;

/// The paths LiteLLM answers `/metrics` on (it mounts an app there, so the
/// trailing slash works too).
pub const PATHS: &[&str] = &["/metrics", "/metrics/"];

/// Add this module's routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route(PATHS[0], get(metrics))
        .route(PATHS[1], get(metrics))
}

/// Whether `path` is the metrics endpoint.
pub fn is_metrics_path(path: &str) -> bool {
    PATHS.contains(&path)
}

/// Whether the metrics endpoint skips authentication on the main port.
pub fn open(state: &AppState) -> bool {
    !state.gw.config.litellm.require_auth_for_metrics
}

async fn metrics(State(state): State<AppState>) -> Response {
    let Some(m) = &state.gw.metrics else {
        return ApiError::from(GatewayError::NotFound(
            "Route not found: /metrics is served when litellm_settings.callbacks includes \"prometheus\"".into(),
        ))
        .into_response();
    };
    let body = m.render(&state.gw);
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

/// A failed key check on `/metrics`, worded as LiteLLM words it: a JSON
/// string, status 401.
pub fn unauthorized(e: &GatewayError) -> Response {
    let text = format!(
        "Unauthorized access to metrics endpoint: {e} To allow unauthenticated access, set `litellm_settings.require_auth_for_metrics_endpoint: false` in your proxy_config.yaml."
    );
    let body = serde_json::to_string(&text).unwrap_or_default();
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The app for `--prometheus_metrics_port`: `/metrics` only, no key.
pub fn standalone(state: AppState) -> Router {
    routes(Router::new()).with_state(state)
}

/// Serve [`standalone`] until the process ends.
pub async fn serve_standalone(
    listener: tokio::net::TcpListener,
    state: AppState,
) -> std::io::Result<()> {
    axum::serve(listener, standalone(state)).await
}
