//! The OpenAI Responses API inbound (`POST /v1/responses`, used by Codex and
//! the newer OpenAI SDKs), for any configured model.
//!
//! Upstreams with a Responses API of their own get the body as it came
//! (model replaced); every other upstream is reached through chat
//! ([`request`] one way, [`response`] and [`stream`] the other), per attempt,
//! in `pipeline::responses`. The gateway keeps each response it returns
//! together with the conversation that led to it ([`store`]), so a follow-up
//! with `previous_response_id` works on upstreams that keep no state, and
//! `GET`/`DELETE /v1/responses/{id}` can answer.

pub mod request;
pub mod response;
pub mod store;
mod store_redis;
pub mod stream;

use std::sync::{Arc, OnceLock};

use ferrolite_types::JsonMap;
use serde_json::Value;

use self::request::BridgeError;
use self::response::{echo_of, new_id, now_secs, Envelope};
use self::store::{
    MemoryStore, ResponseStore, StoredResponse, TieredStore, DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ENTRIES, DEFAULT_TTL,
};
use self::store_redis::RedisResponses;
use crate::pipeline::responses::{responses, OnComplete, ResponsesCall};
use crate::pipeline::{Answer, Controls, Outcome};
use crate::{Gateway, GatewayError, RequestContext};

/// The response store of one gateway, made on first use (memory, plus Redis
/// when the router has Redis).
#[derive(Default)]
pub struct Responses {
    store: OnceLock<Arc<dyn ResponseStore>>,
}

impl Responses {
    pub fn new() -> Self {
        Self::default()
    }

    /// Use `store` instead of the default one.
    pub fn with_store(store: Arc<dyn ResponseStore>) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(store);
        Self { store: cell }
    }

    pub fn store(&self, gw: &Gateway) -> &Arc<dyn ResponseStore> {
        self.store.get_or_init(|| {
            let redis = gw
                .shared
                .clone()
                .map(|s| RedisResponses::new(s, DEFAULT_TTL));
            Arc::new(TieredStore::new(
                MemoryStore::new(DEFAULT_TTL, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES),
                redis,
            ))
        })
    }
}

fn bad(e: BridgeError) -> GatewayError {
    GatewayError::BadRequest {
        message: e.message,
        param: e.param,
    }
}

/// `POST /v1/responses`.
pub async fn create(
    gw: &Gateway,
    ctx: &RequestContext,
    store: &Arc<dyn ResponseStore>,
    body: JsonMap,
) -> Result<Outcome<Value>, GatewayError> {
    use crate::spend::content::{self, Dialect};
    let prompt = content::prompt_with(gw, || content::pick(&body, &["instructions", "input"]));
    let out = create_call(gw, ctx, store, body).await;
    content::keep(
        gw,
        ctx,
        prompt,
        out,
        Dialect::Responses,
        content::json_or_raw,
    )
}

async fn create_call(
    gw: &Gateway,
    ctx: &RequestContext,
    store: &Arc<dyn ResponseStore>,
    mut body: JsonMap,
) -> Result<Outcome<Value>, GatewayError> {
    let controls = Controls::take(&mut body)?;
    let requested = match body.remove("model") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => {
            return Err(GatewayError::BadRequest {
                message: "model is required".into(),
                param: Some("model".into()),
            })
        }
    };
    let keep = body.get("store").and_then(Value::as_bool).unwrap_or(true);
    let new_input = request::input_items(&body).map_err(bad)?;
    let previous_id = body
        .get("previous_response_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let previous = match &previous_id {
        Some(id) => store.get(id).await,
        None => None,
    };
    let mut conversation = previous
        .as_ref()
        .map(StoredResponse::conversation)
        .unwrap_or_default();
    conversation.extend(new_input);

    // Bridged upstreams need the whole conversation; one the gateway does
    // not know can only be continued by an upstream that may know it.
    let chat = match (&previous_id, &previous) {
        (Some(id), None) => Err(BridgeError {
            message: format!("Previous response with id '{id}' not found."),
            param: Some("previous_response_id".into()),
        }),
        _ => request::to_chat(&body, &conversation),
    };
    let mut native_body = body.clone();
    if previous.as_ref().is_some_and(|p| !p.native) {
        native_body.remove("previous_response_id");
        native_body.insert("input".into(), Value::Array(conversation.clone()));
    }
    let env = Envelope {
        id: new_id("resp"),
        created_at: now_secs(),
        model: requested.clone(),
        echo: echo_of(&body),
    };
    let conversation = Arc::new(conversation);
    let on_complete: Option<OnComplete> = keep.then(|| {
        let store = Arc::clone(store);
        let conversation = Arc::clone(&conversation);
        let hook: OnComplete = Arc::new(move |resp: Value, native: bool| {
            let Some(id) = resp.get("id").and_then(Value::as_str).map(str::to_owned) else {
                return;
            };
            let input = conversation.as_ref().clone();
            let write = store.put(
                id,
                StoredResponse {
                    response: resp,
                    input,
                    native,
                },
            );
            tokio::spawn(write);
        });
        hook
    });
    let our_id = env.id.clone();
    let call = ResponsesCall {
        native_body,
        chat,
        env,
        on_complete,
    };
    let outcome = responses(gw, ctx, call, &controls, &requested).await?;
    if let (true, Answer::Json(resp)) = (keep, &outcome.answer) {
        if let Some(id) = resp.get("id").and_then(Value::as_str) {
            let native = id != our_id;
            store
                .put(
                    id.to_owned(),
                    StoredResponse {
                        response: resp.clone(),
                        input: conversation.as_ref().clone(),
                        native,
                    },
                )
                .await;
        }
    }
    Ok(outcome)
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::NotFound(format!("Response with id '{id}' not found."))
}

/// `GET /v1/responses/{id}`.
pub async fn get(store: &Arc<dyn ResponseStore>, id: &str) -> Result<Value, GatewayError> {
    store
        .get(id)
        .await
        .map(|s| s.response)
        .ok_or_else(|| not_found(id))
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(store: &Arc<dyn ResponseStore>, id: &str) -> Result<Value, GatewayError> {
    if store.delete(id).await {
        Ok(serde_json::json!({"id": id, "object": "response", "deleted": true}))
    } else {
        Err(not_found(id))
    }
}
