//! The retry loop shared by every endpoint, and one attempt against one
//! deployment.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrolite_providers::{adapter, capabilities, BuildOptions, ErrorClass, Target, UpstreamError};

use super::controls::Controls;
use super::ops::EndpointOp;
use super::raw;
use super::stream::{SseRelay, Step};
use super::{Answer, AnswerMeta, Outcome};
use crate::gateway::MAX_RETRY_AFTER;
use crate::router::health::Observed;
use crate::router::retry_policy;
use crate::router::strategy::choose;
use crate::router::usage::View;
use crate::router::{Deployment, Resolved};
use crate::upstream::{self, TransportError};
use crate::{Gateway, GatewayError, RequestContext};

/// A failed attempt: the error, and whether another attempt may succeed.
struct Failure {
    error: GatewayError,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn fatal(error: GatewayError) -> Self {
        Self {
            error,
            retryable: false,
            retry_after: None,
        }
    }

    fn retry(error: GatewayError) -> Self {
        Self {
            error,
            retryable: true,
            retry_after: None,
        }
    }
}

/// Statuses worth another attempt: timeouts, conflicts, rate limits, server errors.
fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// Whether another attempt may succeed after this upstream error: by status,
/// and for rate limits a provider reports with another status (Bedrock's 400
/// `ThrottlingException`).
fn retryable_upstream(e: &UpstreamError) -> bool {
    retryable_status(e.status) || e.class() == ErrorClass::RateLimit
}

fn unknown_model(requested: &str) -> GatewayError {
    GatewayError::UnknownModel(format!(
        "Invalid model name passed in model={requested}. Call `/v1/models` to view available models for your key."
    ))
}

fn with_retries(e: GatewayError, n: u32) -> GatewayError {
    match e {
        GatewayError::Upstream { error, group, .. } => GatewayError::Upstream {
            error,
            group,
            retries: n,
        },
        GatewayError::Timeout { group, after, .. } => GatewayError::Timeout {
            group,
            after,
            retries: n,
        },
        GatewayError::Connect { message, group, .. } => GatewayError::Connect {
            message,
            group,
            retries: n,
        },
        other => other,
    }
}

/// Try one model group: its deployments, with retries. `display` is the
/// name answers report as `model` (the one the client asked for, also when
/// this group is a fallback).
pub(super) async fn run_group<E: EndpointOp>(
    gw: &Gateway,
    ctx: &RequestContext,
    op: &E,
    controls: &Controls,
    group: &str,
    display: &str,
) -> Result<Outcome<E::Response>, GatewayError> {
    let mut resolved = gw
        .router
        .resolve(group)
        .ok_or_else(|| unknown_model(group))?;
    resolved.requested = display;
    let budget = ctx
        .num_retries
        .or(controls.num_retries)
        .unwrap_or_else(|| gw.num_retries());
    let n = resolved.deployments.len();
    let mut tries = vec![0u32; n];
    let mut failed = vec![false; n];
    // A continuation prefers any deployment but the one whose stream failed.
    if let Some(avoid) = &ctx.avoid_deployment {
        for (i, d) in resolved.deployments.iter().enumerate() {
            failed[i] = d.id == *avoid;
        }
    }
    // Refused by the shared (Redis) rpm/tpm count during this request.
    let mut denied = vec![false; n];
    let mut retries = 0u32;
    let mut upstream_ms = 0.0;
    let mut last: Option<GatewayError> = None;
    // Pre-call check: deployments whose context window the prompt exceeds.
    let needed = if gw.config.router.context_window_check {
        op.prompt_tokens_estimate()
    } else {
        0
    };
    let too_long: Vec<bool> = resolved
        .deployments
        .iter()
        .map(|d| d.max_input_tokens().is_some_and(|max| needed > max))
        .collect();
    if n > 0 && too_long.iter().all(|t| *t) {
        let max = resolved
            .deployments
            .iter()
            .filter_map(|d| d.max_input_tokens())
            .max()
            .unwrap_or(0);
        return Err(GatewayError::ContextWindow {
            message: format!(
                "litellm.ContextWindowExceededError: the prompt (about {needed} tokens) exceeds the context window of every deployment of model group '{}' (largest: {max} tokens)",
                resolved.group
            ),
            group: resolved.group.to_owned(),
        });
    }
    let off_tag = tag_filter(gw, ctx, controls, resolved.deployments);
    if n > 0 && off_tag.iter().all(|t| *t) {
        return Err(GatewayError::bad_request(format!(
            "Not allowed to access model due to tags configuration: no deployment of model group '{}' matches the request's tags",
            resolved.group
        )));
    }
    let policy = gw.cooldown_policy();
    let may_cool = n > 1 || has_fallbacks(gw, resolved.group);
    loop {
        let now = tokio::time::Instant::now();
        let cooling: Vec<Option<tokio::time::Instant>> = resolved
            .deployments
            .iter()
            .map(|d| gw.health.cooling_until(d.index, now))
            .collect();
        let views: Vec<View> = resolved
            .deployments
            .iter()
            .map(|d| gw.usage.view(d.index, now))
            .collect();
        let full: Vec<Option<Limit>> = (0..n)
            .map(|i| at_limit(gw, &resolved.deployments[i], &views[i]))
            .collect();
        let out: Vec<bool> = (0..n)
            .map(|i| {
                let d = &resolved.deployments[i];
                let unavailable = match &ctx.pin_deployment {
                    // A health check: this deployment only, whatever its state.
                    Some(pin) => *pin != d.id,
                    None => {
                        cooling[i].is_some()
                            || denied[i]
                            || full[i].is_some()
                            || too_long[i]
                            || off_tag[i]
                    }
                };
                unavailable || d.max_retries.is_some_and(|m| tries[i] > m)
            })
            .collect();
        let fresh_left = (0..n).any(|i| !failed[i] && !out[i]);
        let chosen = choose(
            gw.strategy,
            resolved.deployments,
            |i| !out[i] && (!fresh_left || !failed[i]),
            &views,
            fastrand::f64(),
        );
        let Some((i, d)) = chosen else {
            if let Some(e) = last {
                // Every deployment used up its max_retries or went cold before the budget ran out.
                return Err(with_retries(e, retries.saturating_sub(1)));
            }
            let wait = match cooling.iter().flatten().min() {
                Some(until) => until.duration_since(now),
                // Nothing cooling: every deployment is at a limit.
                None if full.contains(&Some(Limit::Parallel)) => Duration::from_secs(1),
                None => gw.usage.until_next_minute(now),
            };
            return Err(GatewayError::NoDeployments {
                group: resolved.group.to_owned(),
                retry_after: wait,
            });
        };
        if let Some(shared) = gw
            .shared
            .as_ref()
            .filter(|_| gw.config.router.enforce_rate_limits)
        {
            if d.rpm.is_some() || d.tpm.is_some() {
                let limit = |v: Option<f64>| v.map(|x| x as u64);
                if shared.acquire(&d.id, limit(d.rpm), limit(d.tpm)).await == Some(false) {
                    // Every instance together has used this minute's budget.
                    denied[i] = true;
                    continue;
                }
            }
        }
        // max_parallel_requests across instances: one exact count in Redis.
        let mut lease = None;
        if let (Some(shared), Some(limit)) = (gw.shared.as_ref(), parallel_limit(gw, d)) {
            let member = format!("{}:{}", ctx.call_id, tries[i] + retries);
            let hold = d.timeout.unwrap_or_else(|| gw.default_timeout()) + SLOT_GRACE;
            match shared.take_slot(&d.id, &member, limit, hold).await {
                Ok(Some(l)) => lease = Some(l),
                Ok(None) => {
                    // Every instance together has this many requests in flight.
                    denied[i] = true;
                    continue;
                }
                Err(()) => {} // Redis is down: the local count decides.
            }
        }
        tries[i] += 1;
        let started = Instant::now();
        let span = (ctx.trace.as_ref()).map(|t| t.attempt(op.call_type(), d, resolved.group));
        let result = attempt(gw, ctx, op, controls, &resolved, d, lease, span.as_ref()).await;
        if let Some(s) = span {
            s.end(result.as_ref().err().map(|f| &f.error));
        }
        upstream_ms += started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok((answer, mut meta)) => {
                gw.health.record_success(d.index);
                if let (Some(m), None) = (&gw.metrics, &ctx.pin_deployment) {
                    let p = ctx.principal.as_deref();
                    m.attempt(d.index, resolved.requested, resolved.group, p, None);
                }
                meta.retries = retries;
                meta.max_retries = budget;
                meta.upstream_ms = upstream_ms;
                let v = gw.usage.view(d.index, tokio::time::Instant::now());
                meta.remaining_requests = d
                    .rpm
                    .map(|r| (r as u64).saturating_sub(u64::from(v.requests_this_minute)));
                meta.remaining_tokens = d
                    .tpm
                    .map(|t| (t as u64).saturating_sub(v.tokens_this_minute));
                return Ok(Outcome { answer, meta });
            }
            Err(f) => {
                failed[i] = true;
                let mut cooled = None;
                if let Some(seen) = observed(&f).filter(|_| ctx.pin_deployment.is_none()) {
                    let now = tokio::time::Instant::now();
                    cooled = gw.health.record_failure(
                        d.index,
                        &d.id,
                        seen,
                        retry_policy::allowed_fails_key(&f.error),
                        policy,
                        may_cool,
                        now,
                    );
                    if let (Some(dur), Some(shared)) = (cooled, &gw.shared) {
                        let (shared, id) = (Arc::clone(shared), d.id.clone());
                        tokio::spawn(async move { shared.set_cooldown(&id, dur).await });
                    }
                }
                if let (Some(m), None) = (&gw.metrics, &ctx.pin_deployment) {
                    let failure = Some((&f.error, cooled.is_some()));
                    let p = ctx.principal.as_deref();
                    m.attempt(d.index, resolved.requested, resolved.group, p, failure);
                }
                tracing::debug!(group = resolved.group, deployment = %d.id, error = f.error.label(), retryable = f.retryable, "attempt failed");
                let policy_retries = retry_policy::retries_for(
                    &gw.config.router.retry_policy,
                    gw.config
                        .router
                        .model_group_retry_policy
                        .get(resolved.group),
                    &f.error,
                );
                // A retry policy entry for this kind of failure overrides
                // num_retries, and may make a normally final error retryable.
                let allowed = match policy_retries {
                    Some(n) => n,
                    None if f.retryable => budget,
                    None => 0,
                };
                if retries >= allowed {
                    return Err(with_retries(f.error, retries));
                }
                retries += 1;
                let same_next = (0..n).all(|j| j == i || failed[j] || out[j]);
                let mut wait = gw.config.router.retry_after.unwrap_or(Duration::ZERO);
                if same_next {
                    if let Some(ra) = f.retry_after {
                        wait = wait.max(ra.min(MAX_RETRY_AFTER));
                    }
                }
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                last = Some(f.error);
            }
        }
    }
}

/// Whether a deployment is at one of its limits right now: requests in
/// flight (`max_parallel_requests`, else `default_max_parallel_requests`),
/// and — with pre-call checks on, as in LiteLLM — this minute's `rpm`/`tpm`.
/// A slot lease outlives the request's timeout by this much before Redis
/// frees it on its own (an instance that died mid-request).
const SLOT_GRACE: Duration = Duration::from_secs(30);

fn parallel_limit(gw: &Gateway, d: &Deployment) -> Option<u32> {
    d.max_parallel_requests
        .or(gw.config.router.default_max_parallel_requests)
        .or(gw.config.general.max_parallel_requests)
}

fn at_limit(gw: &Gateway, d: &Deployment, v: &View) -> Option<Limit> {
    // With Redis, the exact fleet-wide count is taken in Redis before the
    // call; here only this instance's own requests are a sure reason to skip.
    let in_flight = if gw.shared.is_some() {
        v.local_in_flight
    } else {
        v.in_flight
    };
    if parallel_limit(gw, d).is_some_and(|p| in_flight >= p) {
        return Some(Limit::Parallel);
    }
    let rate = gw.config.router.enforce_rate_limits
        && (d
            .rpm
            .is_some_and(|r| f64::from(v.requests_this_minute) >= r)
            || d.tpm.is_some_and(|t| v.tokens_this_minute as f64 >= t));
    rate.then_some(Limit::Rate)
}

/// Which limit keeps a deployment out right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// Too many requests in flight: one may finish any moment.
    Parallel,
    /// This minute's rpm/tpm is used up.
    Rate,
}

/// Whether a failure tells something about the deployment's health.
fn observed(f: &Failure) -> Option<Observed> {
    match &f.error {
        GatewayError::Upstream { error, .. } if error.class() == ErrorClass::RateLimit => {
            Some(Observed::Immediate {
                retry_after: f.retry_after,
            })
        }
        GatewayError::Upstream { error, .. } => match error.status {
            429 | 401 | 404 | 408 => Some(Observed::Immediate {
                retry_after: f.retry_after,
            }),
            s if s >= 500 => Some(Observed::Failure),
            _ => None,
        },
        GatewayError::Timeout { .. } => Some(Observed::Immediate { retry_after: None }),
        GatewayError::Connect { .. } | GatewayError::BadUpstreamResponse(_) => {
            Some(Observed::Failure)
        }
        _ => None,
    }
}

/// A group with somewhere to fall back to may have its only deployment cooled down.
/// Tag filtering (`enable_tag_filtering`), as LiteLLM: a tagged request goes
/// to deployments sharing one of its tags (every tag, with
/// `tag_filtering_match_any: false`) or tagged `default`; an untagged request
/// goes to the `default` deployments when there are any, else to all.
/// `true` marks a deployment the request may not use.
fn tag_filter(
    gw: &Gateway,
    ctx: &RequestContext,
    controls: &Controls,
    deployments: &[Deployment],
) -> Vec<bool> {
    if !gw.config.router.tag_filtering {
        return vec![false; deployments.len()];
    }
    let wanted: Vec<&str> = controls
        .tags
        .iter()
        .chain(&ctx.tags)
        .map(String::as_str)
        .collect();
    let is_default = |d: &Deployment| d.tags.iter().any(|t| t == "default");
    if wanted.is_empty() {
        let any_default = deployments.iter().any(is_default);
        return deployments
            .iter()
            .map(|d| any_default && !is_default(d))
            .collect();
    }
    let any = gw.config.router.tag_match_any;
    deployments
        .iter()
        .map(|d| {
            let has = |t: &&str| d.tags.iter().any(|x| x == t);
            let matches = if any {
                wanted.iter().any(has)
            } else {
                wanted.iter().all(has)
            };
            !(matches || is_default(d))
        })
        .collect()
}

fn has_fallbacks(gw: &Gateway, group: &str) -> bool {
    let f = &gw.config.fallbacks;
    f.general.contains_key(group)
        || f.context_window.contains_key(group)
        || f.content_policy.contains_key(group)
        || !f.default.is_empty()
}

/// The request parameters to remove before calling this deployment: those
/// the provider cannot take (when `drop_params` is on — else that is a 400,
/// as in LiteLLM), and the deployment's `additional_drop_params`.
fn params_to_drop<E: EndpointOp>(
    gw: &Gateway,
    op: &E,
    controls: &Controls,
    d: &Deployment,
    target: &Target,
) -> Result<Vec<String>, GatewayError> {
    let unsupported = capabilities::unsupported_params(target.kind);
    let params = op.params();
    let mut drop: Vec<String> = d
        .additional_drop_params
        .iter()
        .filter(|k| params.contains_key(k.as_str()))
        .cloned()
        .collect();
    let offending: Vec<String> = params
        .keys()
        .filter(|k| {
            unsupported.contains(&k.as_str())
                && !controls.allowed_openai_params.iter().any(|a| a == *k)
                && !drop.contains(k)
        })
        .cloned()
        .collect();
    if offending.is_empty() {
        return Ok(drop);
    }
    let drop_params = controls
        .drop_params
        .or(d.drop_params)
        .unwrap_or(gw.config.litellm.drop_params);
    if !drop_params {
        return Err(GatewayError::UnsupportedParams {
            provider: target.provider.clone(),
            model: target.model.clone(),
            params: offending,
        });
    }
    drop.extend(offending);
    Ok(drop)
}

/// The upstream target of a deployment, with a wildcard match substituted.
fn target_for<'a>(d: &'a Deployment, resolved: &Resolved<'_>) -> Option<Cow<'a, Target>> {
    let t = d.target.as_ref()?;
    match &resolved.wildcard_match {
        Some(m) if t.model.contains('*') => {
            let mut t = t.clone();
            t.model = t.model.replace('*', m);
            Some(Cow::Owned(t))
        }
        _ => Some(Cow::Borrowed(t)),
    }
}

#[allow(clippy::too_many_arguments)]
async fn attempt<E: EndpointOp>(
    gw: &Gateway,
    ctx: &RequestContext,
    op: &E,
    controls: &Controls,
    resolved: &Resolved<'_>,
    d: &Deployment,
    lease: Option<crate::shared::SlotLease>,
    span: Option<&crate::observe::otel::AttemptSpan>,
) -> Result<(Answer<E::Response>, AnswerMeta), Failure> {
    let group = resolved.group;
    let mut meta = AnswerMeta {
        model_id: d.id.clone(),
        model_group: group.to_owned(),
        upstream_model: d.litellm_model.clone(),
        ..Default::default()
    };
    if let Some(content) = &d.mock_response {
        let answer = op
            .mock(content, resolved.requested)
            .map_err(Failure::fatal)?;
        return Ok((answer, meta));
    }
    if let Some(u) = &d.unsupported {
        return Err(Failure::fatal(GatewayError::bad_request(format!(
            "model group '{group}': {} (configured as {})",
            u.reason, d.litellm_model
        ))));
    }
    let Some(target) = target_for(d, resolved) else {
        return Err(Failure::fatal(GatewayError::Internal(format!(
            "deployment {} has no upstream",
            d.id
        ))));
    };
    meta.api_base = Some(target.api_base.clone());
    meta.upstream_model = format!("{}/{}", target.provider, target.model);

    let timeout = ctx
        .timeout
        .or(controls.timeout)
        .or(d.timeout)
        .unwrap_or_else(|| gw.default_timeout());
    meta.timeout_secs = timeout.as_secs_f64();
    let first_byte_timeout = if op.is_stream() {
        ctx.stream_timeout
            .or(d.stream_timeout)
            .or(gw.config.router.stream_timeout)
            .unwrap_or(timeout)
    } else {
        timeout
    };
    let provider = adapter(target.kind);
    let drop = params_to_drop(gw, op, controls, d, &target).map_err(Failure::fatal)?;
    let pruned;
    let op = if drop.is_empty() {
        op
    } else {
        pruned = op.without(&drop);
        &pruned
    };
    let opts = BuildOptions {
        defaults: d.defaults.as_ref(),
        stream_usage: true,
    };
    let mut req = op
        .build(provider, &target, opts)
        .map_err(|e| Failure::fatal(GatewayError::bad_request(e.to_string())))?;
    if let Some(s) = span {
        s.inject(&mut req.headers);
    }

    let started = Instant::now();
    let transport = |e: TransportError, after: Duration| match e {
        TransportError::Timeout => Failure::retry(GatewayError::Timeout {
            group: group.to_owned(),
            after,
            retries: 0,
        }),
        TransportError::Connect(message) => Failure::retry(GatewayError::Connect {
            message,
            group: group.to_owned(),
            retries: 0,
        }),
        TransportError::Credentials(message) => Failure::fatal(GatewayError::Internal(format!(
            "cannot authenticate to {}: {message}",
            target.provider
        ))),
    };
    let creds = upstream::Credentials {
        key: d.api_key.as_ref(),
        cloud: d.cloud.as_ref(),
        gcp_tokens: Some(&gw.gcp_tokens),
    };
    let mut inflight = gw.usage.start(d.index, &d.id);
    if let Some(l) = lease {
        inflight.keep_lease(l);
    }
    let resp = upstream::send(&gw.http, req, creds, first_byte_timeout)
        .await
        .map_err(|e| transport(e, first_byte_timeout))?;
    let left = |limit: Duration| {
        limit
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1))
    };

    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        let retry_after = upstream::retry_after(resp.headers());
        let body = upstream::read_body(resp, left(timeout))
            .await
            .unwrap_or_default();
        let error = provider.parse_error(status, &body, &target);
        if status == 401 {
            // A rejected OAuth token may have been revoked early: fetch a new
            // one next time instead of reusing it until it expires.
            if let Some(crate::config::CloudAuth::Gcp(g)) = &d.cloud {
                gw.gcp_tokens.forget(g);
            }
        }
        let error_ref = error.clone();
        return Err(Failure {
            error: GatewayError::Upstream {
                error: Box::new(error),
                group: group.to_owned(),
                retries: 0,
            },
            retryable: retryable_upstream(&error_ref),
            retry_after,
        });
    }

    if op.is_stream() {
        let model: Arc<str> = Arc::from(resolved.requested);
        let frames = op.frames(provider, &target, model);
        let mut relay = SseRelay::new(
            resp,
            provider.stream_decoder(),
            frames,
            // A stall between chunks longer than stream_timeout (or the
            // request timeout) ends the stream with an error frame.
            first_byte_timeout,
            Arc::from(group),
        );
        return match relay.step(left(first_byte_timeout)).await {
            Step::Failed(out, failure) if out.is_empty() => {
                let error = failure.into_error(group, first_byte_timeout);
                // An error event before any content is an error answer: retry
                // it only when an ordinary HTTP answer would be.
                let retryable = match &error {
                    GatewayError::Upstream { error, .. } => retryable_upstream(error),
                    _ => true,
                };
                Err(Failure {
                    error,
                    retryable,
                    retry_after: None,
                })
            }
            first => {
                // Time to first token, for latency-based routing.
                gw.usage.record_latency(d.index, started.elapsed());
                relay.hold(inflight);
                ctx.meter.first_token();
                if ctx.meter.active() {
                    relay.meter(Arc::clone(&ctx.meter));
                }
                Ok((Answer::Stream(relay.into_stream(first)), meta))
            }
        };
    }

    let body = upstream::read_body(resp, left(timeout))
        .await
        .map_err(|e| transport(e, timeout))?;
    let bad = |e: String| {
        Failure::retry(GatewayError::BadUpstreamResponse(format!(
            "{}: {e}",
            target.provider
        )))
    };
    gw.usage.record_latency(d.index, started.elapsed());
    if op.forward_raw(provider) {
        let raw = raw::relabel(body, resolved.requested).map_err(bad)?;
        inflight.add_tokens(raw.usage.as_ref().map_or(0, |u| u.total_tokens));
        return Ok((Answer::Raw(raw), meta));
    }
    let mut parsed = op.parse(provider, &body, &target).map_err(|e| {
        Failure::retry(GatewayError::BadUpstreamResponse(format!(
            "{}: {e}",
            target.provider
        )))
    })?;
    op.rename(&mut parsed, resolved.requested);
    inflight.add_tokens(op.total_tokens(&parsed));
    Ok((Answer::Json(parsed), meta))
}
