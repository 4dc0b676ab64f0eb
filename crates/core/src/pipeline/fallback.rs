//! After the requested group has failed: the fallback groups, in order.

use super::attempt::run_group;
use super::controls::Controls;
use super::ops::EndpointOp;
use super::{Answer, Outcome};
use crate::router::fallbacks::{may_fall_back, plan};
use crate::{Gateway, GatewayError, RequestContext};
use futures_util::StreamExt;

pub(super) async fn run<E: EndpointOp>(
    gw: &Gateway,
    ctx: &RequestContext,
    op: &E,
    controls: &Controls,
    requested: &str,
) -> Result<Outcome<E::Response>, GatewayError> {
    let meter = &ctx.meter;
    meter.bind(&gw.sinks);
    meter.update(|r| {
        r.call_type = op.call_type();
        requested.clone_into(&mut r.requested_model);
        r.stream = op.is_stream();
        r.principal.clone_from(&ctx.principal);
        r.tags = controls.tags.iter().chain(&ctx.tags).cloned().collect();
        r.end_user = op
            .params()
            .get("user")
            .and_then(|u| u.as_str())
            .map(str::to_owned);
        if r.stream {
            r.prompt_estimate = op.prompt_tokens_estimate();
        }
    });
    let result = match gw.admit() {
        Ok(slot) => groups(gw, ctx, op, controls, requested)
            .await
            .map(|o| (o, slot)),
        Err(e) => Err(e),
    };
    let (mut outcome, slot) = match result {
        Ok(o) => o,
        Err(e) => {
            meter.fail(e.status(), e.label(), e.to_string());
            return Err(e);
        }
    };
    meter.update(|r| {
        r.meta = outcome.meta.clone();
        match &outcome.answer {
            Answer::Json(j) => r.usage = op.usage(j),
            Answer::Raw(raw) => r.usage.clone_from(&raw.usage),
            Answer::Stream(_) => {}
        }
    });
    // A stream keeps its slot until it ends or the client goes away.
    if let Answer::Stream(stream) = outcome.answer {
        outcome.answer = Answer::Stream(Box::pin(stream.map(move |frame| {
            let _held = &slot;
            frame
        })));
    }
    Ok(outcome)
}

async fn groups<E: EndpointOp>(
    gw: &Gateway,
    ctx: &RequestContext,
    op: &E,
    controls: &Controls,
    requested: &str,
) -> Result<Outcome<E::Response>, GatewayError> {
    let first = match run_group(gw, ctx, op, controls, requested, requested).await {
        Ok(o) => return Ok(o),
        Err(e) => e,
    };
    if ctx.no_fallbacks || !may_fall_back(&first) {
        return Err(first);
    }
    let group = gw
        .router
        .resolve(requested)
        .map(|r| r.group.to_owned())
        .unwrap_or_else(|| requested.to_owned());
    let groups = plan(
        &gw.config.fallbacks,
        &group,
        &first,
        controls.fallbacks.as_deref(),
    );
    let mut last = first;
    for (n, fallback) in groups.iter().enumerate() {
        tracing::debug!(from = %group, to = %fallback, error = last.label(), "falling back");
        match run_group(gw, ctx, op, controls, fallback, requested).await {
            Ok(mut o) => {
                o.meta.fallbacks = n as u32 + 1;
                return Ok(o);
            }
            // A fallback that names no model group is a config mistake: say
            // so in the log, and keep the error that matters to the client.
            Err(GatewayError::UnknownModel(_)) => {
                tracing::warn!(from = %group, to = %fallback, "fallback names a model group that is not in model_list");
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// After a stream failed mid-way in `group`: run the continuation request on
/// the group's fallbacks, or on the same group when it has none.
pub(super) async fn continue_after<E: EndpointOp>(
    gw: &Gateway,
    ctx: &RequestContext,
    op: &E,
    controls: &Controls,
    requested: &str,
    group: &str,
) -> Result<Outcome<E::Response>, GatewayError> {
    let failure = super::continuation::planned_error(group);
    let mut groups = plan(
        &gw.config.fallbacks,
        group,
        &failure,
        controls.fallbacks.as_deref(),
    );
    if groups.is_empty() {
        groups.push(group);
    }
    let mut last = failure;
    for g in groups {
        match run_group(gw, ctx, op, controls, g, requested).await {
            Ok(o) => return Ok(o),
            Err(e) => last = e,
        }
    }
    Err(last)
}
