//! The OpenAI Responses API: `POST /v1/responses`, and `GET` / `DELETE
//! /v1/responses/{id}` for the responses the gateway kept (also without `/v1`
//! and under `/openai/v1`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use ferrolite_core::dialect::responses::{self, Responses};
use ferrolite_types::JsonMap;

use crate::extract::{Ctx, JsonBody};
use crate::response::{json, respond, ApiError};
use crate::state::AppState;

/// Add this module's routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let mut sub = Router::new();
    for prefix in ["", "/v1", "/openai/v1"] {
        sub = sub
            .route(&format!("{prefix}/responses"), post(create))
            .route(
                &format!("{prefix}/responses/{{id}}"),
                get(retrieve).delete(remove),
            );
    }
    // One response store per app (memory, plus Redis when configured).
    r.merge(sub.layer(Extension(Arc::new(Responses::new()))))
}

async fn create(
    State(s): State<AppState>,
    Extension(kept): Extension<Arc<Responses>>,
    Ctx(ctx): Ctx,
    JsonBody(body): JsonBody<JsonMap>,
) -> Response {
    let store = kept.store(&s.gw);
    let result = responses::create(&s.gw, &ctx, store, body).await;
    respond(result, ctx)
}

async fn retrieve(
    State(s): State<AppState>,
    Extension(kept): Extension<Arc<Responses>>,
    Path(id): Path<String>,
) -> Response {
    match responses::get(kept.store(&s.gw), &id).await {
        Ok(v) => json(&v),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn remove(
    State(s): State<AppState>,
    Extension(kept): Extension<Arc<Responses>>,
    Path(id): Path<String>,
) -> Response {
    match responses::delete(kept.store(&s.gw), &id).await {
        Ok(v) => json(&v),
        Err(e) => ApiError::from(e).into_response(),
    }
}
