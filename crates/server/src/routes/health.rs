//! Health probes.

use axum::extract::State;
use axum::response::Response;
use ferrolite_core::{health, VERSION};
use serde_json::json;

use crate::response::json;
use crate::state::AppState;

/// Liveness: the process answers.
pub async fn liveliness() -> Response {
    json(&"I'm alive!")
}

/// Readiness: ready to serve (no database in this version).
pub async fn readiness() -> Response {
    json(&json!({
        "status": "healthy",
        "db": "Not connected",
        "cache": null,
        "litellm_version": VERSION,
        "success_callbacks": [],
    }))
}

/// `/health`: one real call per deployment.
pub async fn health(State(s): State<AppState>) -> Response {
    json(&health::report(&s.gw).await)
}

pub async fn root() -> Response {
    json(&json!({ "name": "ferrolite", "version": VERSION }))
}
