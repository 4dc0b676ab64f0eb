//! `GET /health`: one small real call per deployment, all at once, each
//! bounded by a timeout. Unlike LiteLLM, failures report the upstream's
//! message, never a stack trace.

use std::time::Duration;

use ferrolite_types::openai::{ChatRequest, EmbeddingRequest};
use serde_json::{json, Value};

use crate::router::Deployment;
use crate::{pipeline, Gateway, RequestContext};

pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(30);

fn endpoint(d: &Deployment) -> Value {
    let mut v = json!({ "model": d.litellm_model, "model_name": d.model_name, "model_id": d.id });
    if let Some(t) = &d.target {
        v["api_base"] = json!(t.api_base);
    }
    v
}

async fn check(gw: &Gateway, d: &Deployment) -> Result<(), String> {
    // Route through the pipeline with the deployment's own name, so the
    // check uses exactly what a request would: for wildcard groups, the
    // model written in litellm_params.
    let name = if d.model_name.contains('*') {
        d.litellm_model.replace('*', "health-check")
    } else {
        d.model_name.clone()
    };
    let mut ctx = RequestContext::new();
    ctx.num_retries = Some(0);
    ctx.no_fallbacks = true;
    ctx.pin_deployment = Some(d.id.clone());
    ctx.timeout = Some(
        d.model_info
            .get("health_check_timeout")
            .and_then(Value::as_f64)
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(HEALTH_CHECK_TIMEOUT),
    );
    let mode = d
        .model_info
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or("chat");
    let result = if mode == "embedding" {
        let req: EmbeddingRequest = serde_json::from_value(json!({"model": name, "input": "ping"}))
            .map_err(|e| e.to_string())?;
        pipeline::embedding(gw, &ctx, req).await.map(|_| ())
    } else {
        let req: ChatRequest = serde_json::from_value(json!({"model": name, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}))
            .map_err(|e| e.to_string())?;
        pipeline::chat(gw, &ctx, req).await.map(|_| ())
    };
    result.map_err(|e| e.client_message())
}

/// The `/health` document.
pub async fn report(gw: &Gateway) -> Value {
    let deployments = gw.router.all();
    let checks = deployments
        .iter()
        .map(|d| async move { (d, check(gw, d).await) });
    let results = futures_util::future::join_all(checks).await;
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    for (d, r) in results {
        let mut e = endpoint(d);
        match r {
            Ok(()) => healthy.push(e),
            Err(msg) => {
                e["error"] = json!(msg);
                unhealthy.push(e);
            }
        }
    }
    json!({
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
    })
}
