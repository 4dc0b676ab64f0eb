//! Routes and layers. Every route requires a key except those in
//! [`OPEN_ROUTES`].

use std::future::Future;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferrolite_core::{auth, GatewayError};
use http::{HeaderValue, Method};
use tower_http::catch_panic::CatchPanicLayer;

use crate::response::{error_response, ApiError};
use crate::routes::{admin, anthropic, gemini, health, metrics, openai, responses};
use crate::state::AppState;

/// Routes reachable without a key (load balancer probes).
pub const OPEN_ROUTES: &[&str] = &[
    "/",
    "/health/liveliness",
    "/health/liveness",
    "/health/readiness",
];

/// Paths that exist with and without `/v1` (and as `/openai/v1/...`).
fn versioned(
    router: Router<AppState>,
    path: &str,
    route: axum::routing::MethodRouter<AppState>,
) -> Router<AppState> {
    router
        .route(path, route.clone())
        .route(&format!("/v1{path}"), route.clone())
        .route(&format!("/openai/v1{path}"), route)
}

pub fn build_app(state: AppState) -> Router {
    let mut r = Router::new();
    r = versioned(r, "/chat/completions", post(openai::chat));
    r = versioned(r, "/completions", post(openai::completions));
    r = versioned(r, "/embeddings", post(openai::embeddings));
    r = versioned(r, "/models", get(openai::models));
    r = r
        .route("/v1/models/{*id}", get(openai::model))
        .route("/models/{*id}", get(openai::model))
        .route("/engines/{model}/chat/completions", post(openai::chat))
        .route(
            "/openai/deployments/{model}/chat/completions",
            post(openai::chat),
        )
        .route("/engines/{model}/completions", post(openai::completions))
        .route(
            "/openai/deployments/{model}/completions",
            post(openai::completions),
        )
        .route("/engines/{model}/embeddings", post(openai::embeddings))
        .route(
            "/openai/deployments/{model}/embeddings",
            post(openai::embeddings),
        )
        .route("/model/info", get(openai::model_info))
        .route("/v1/model/info", get(openai::model_info))
        .route("/health", get(health::health))
        .route("/health/liveliness", get(health::liveliness))
        .route("/health/liveness", get(health::liveliness))
        .route("/health/readiness", get(health::readiness))
        .route("/", get(health::root));
    r = anthropic::routes(r);
    r = responses::routes(r);
    r = gemini::routes(r);
    r = admin::routes(r);
    r = metrics::routes(r);
    // The admin UI: its own session cookie, which also stands for the master
    // key on the other routes (session_layer, below the key check).
    let ui = crate::ui::Ui::new(&state, crate::ui::UiLogin::from_env());
    r = crate::ui::routes(r, ui.clone());
    if let Some(otel) = state.gw.otel.clone() {
        // Read by the request-context extractor; absent with otel off.
        r = r.layer(axum::Extension(otel));
    }
    // One middleware for the UI session, the key check and the security
    // headers: axum wraps (and clones and boxes, per request) every route in
    // each layer, so three layers cost three times what one does.
    let front = FrontDoor {
        state: state.clone(),
        ui,
    };
    r.fallback(not_found)
        .layer(middleware::from_fn_with_state(front, front_door))
        .layer(CatchPanicLayer::custom(|_| {
            error_response(
                &GatewayError::Internal("internal error: the request handler failed".into()),
                None,
            )
        }))
        .with_state(state)
}

async fn not_found(method: Method, uri: http::Uri) -> ApiError {
    ApiError::from(GatewayError::NotFound(format!(
        "Route not found: {method} {}",
        uri.path()
    )))
}

/// The key a client presented, from any header LiteLLM accepts it in.
fn presented_key(req: &Request) -> Option<&str> {
    let h = req.headers();
    if let Some(v) = h
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let k = auth::bearer(v);
        if !k.is_empty() {
            return Some(k);
        }
    }
    auth::KEY_HEADERS
        .iter()
        .find_map(|name| {
            h.get(*name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        })
        .or_else(|| gemini::query_key(req.uri()))
}

#[derive(Clone)]
struct FrontDoor {
    state: AppState,
    ui: crate::ui::Ui,
}

/// Every request: a UI session may stand for the master key (with its CSRF
/// token on writes), then the key is checked, then the answer gets the
/// security headers — whichever of them answered.
async fn front_door(State(front): State<FrontDoor>, req: Request, next: Next) -> Response {
    let mut resp = match crate::ui::apply_session(&front.ui, req) {
        Ok(req) => authenticate(&front.state, req, next).await,
        Err(refused) => *refused,
    };
    security_headers(&mut resp);
    resp
}

async fn authenticate(state: &AppState, req: Request, next: Next) -> Response {
    if OPEN_ROUTES.contains(&req.uri().path())
        || crate::ui::is_ui_path(req.uri().path())
        || (metrics::is_metrics_path(req.uri().path()) && metrics::open(state))
    {
        return next.run(req).await;
    }
    match auth::check(state.gw.master_key(), presented_key(&req)) {
        Ok(()) => {
            let mut req = req;
            req.extensions_mut()
                .insert(std::sync::Arc::new(auth::Principal {
                    admin: true,
                    ..Default::default()
                }));
            next.run(req).await
        }
        Err(e) => {
            // Not the master key: a virtual key, when a key store is attached.
            let path = req.uri().path().to_owned();
            let e = match (&state.gw.keys, presented_key(&req).map(str::to_owned)) {
                (Some(keys), Some(key)) => {
                    match crate::key_auth::admit(state, keys, &key, req).await {
                        Ok(req) => return next.run(req).await,
                        Err(e) => e,
                    }
                }
                _ => e,
            };
            if anthropic::is_anthropic_path(&path) {
                anthropic::error_response(&e, None)
            } else if gemini::is_gemini_path(&path) {
                gemini::error_response(&e, None)
            } else if metrics::is_metrics_path(&path) {
                metrics::unauthorized(&e)
            } else {
                ApiError::from(e).into_response()
            }
        }
    }
}

fn security_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
}

/// Serve until `shutdown` resolves, then finish in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, build_app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
