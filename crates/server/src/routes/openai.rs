//! OpenAI-compatible routes.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use ferrolite_core::{pipeline, GatewayError};
use ferrolite_types::openai::{
    ChatRequest, CompletionRequest, EmbeddingRequest, ModelCard, ModelList,
};
use serde_json::{json, Value};

use crate::extract::{Ctx, JsonBody};
use crate::response::{json as json_response, respond, ApiError};
use crate::state::AppState;

/// LiteLLM reports this creation time for every configured model.
const MODEL_CREATED: u64 = 1_677_610_602;

pub async fn chat(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<ChatRequest>,
) -> Response {
    let result = pipeline::chat(&s.gw, &ctx, req).await;
    respond(result, ctx)
}

pub async fn completions(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<CompletionRequest>,
) -> Response {
    let result = pipeline::completion(&s.gw, &ctx, req).await;
    respond(result, ctx)
}

pub async fn embeddings(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<EmbeddingRequest>,
) -> Response {
    let result = pipeline::embedding(&s.gw, &ctx, req).await;
    respond(result, ctx)
}

fn card(id: &str) -> ModelCard {
    ModelCard {
        id: id.to_owned(),
        object: "model".into(),
        created: MODEL_CREATED,
        owned_by: "openai".into(),
    }
}

pub async fn models(State(s): State<AppState>) -> Response {
    let data = s.gw.router.model_names().into_iter().map(card).collect();
    json_response(&ModelList {
        object: "list".into(),
        data,
    })
}

pub async fn model(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    if s.gw.router.resolve(&id).is_some() {
        json_response(&card(&id))
    } else {
        ApiError::from(GatewayError::NotFound(format!(
            "The model '{id}' does not exist"
        )))
        .into_response()
    }
}

/// `GET /model/info`: every deployment with its public parameters (secrets removed).
pub async fn model_info(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let wanted = q.get("litellm_model_id");
    let data: Vec<Value> = s
        .gw
        .router
        .all()
        .into_iter()
        .filter(|d| wanted.is_none_or(|w| *w == d.id))
        .map(|d| {
            let mut info = d.model_info.clone();
            info.insert("id".into(), json!(d.id));
            if let Some(t) = &d.target {
                info.entry("litellm_provider").or_insert(json!(t.provider));
            }
            info.entry("mode").or_insert(json!("chat"));
            json!({ "model_name": d.model_name, "litellm_params": d.public_params, "model_info": info })
        })
        .collect();
    json_response(&json!({ "data": data }))
}
