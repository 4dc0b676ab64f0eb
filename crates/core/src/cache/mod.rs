//! Response caching: exact-match answers kept in memory or in Redis
//! (`litellm_settings.cache` / `cache_params`), with LiteLLM's per-request
//! controls, replay of cached answers as streams, and coalescing of
//! identical requests in flight.
//!
//! The pipeline calls [`Lookup::read`] before it strips LiteLLM's body
//! fields (the `cache` controls are among them), [`Lookup::keyed`] once the
//! requested model is known, and wraps the upstream call in [`serve`]:
//!
//! 1. read    — unless `no-cache`: a stored answer younger than `s-maxage`
//!    is the answer (replayed as SSE when the request streams);
//! 2. wait    — a non-streaming request for a key already upstream waits for
//!    that answer (bounded); otherwise it leads the flight;
//! 3. call    — the upstream call, as without a cache;
//! 4. store   — unless `no-store`: the JSON answer, or a stream assembled
//!    when it ends cleanly, kept for `ttl`. Redis writes are off the
//!    request path.
//!
//! A cache that fails (Redis down or slow) only makes the request uncached.

mod coalesce;
pub mod key;
mod memory;
mod redis;
pub mod settings;
pub(crate) mod stream;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrolite_types::openai::completions::CompletionRequest;
use ferrolite_types::openai::{ChatRequest, EmbeddingRequest};
use ferrolite_types::{JsonMap, Usage};
use futures_util::future::Either;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::meter::CallType;
use crate::pipeline::{Answer, AnswerMeta, Outcome, RawJson};
use crate::{Gateway, GatewayError, RequestContext};

pub use coalesce::Flights;
pub use memory::MemoryStore;
pub use settings::{Backend, CacheMode, CacheSettings, CallKind};

enum Store {
    Memory(MemoryStore),
    Redis(Arc<redis::RedisStore>),
}

/// The gateway's response cache.
pub struct Cache {
    settings: CacheSettings,
    store: Store,
    flights: Arc<Flights>,
    /// Binds a call's meter when the gateway has no sinks, so a stream's
    /// usage (which the relay records on the meter) is known when the
    /// stream is stored.
    usage_probe: Arc<crate::meter::Sinks>,
}

struct Discard;

impl crate::meter::CallSink for Discard {
    fn record(&self, _: &crate::meter::CallRecord) {}
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("mode", &self.settings.mode)
            .field(
                "backend",
                &match self.store {
                    Store::Memory(_) => "local",
                    Store::Redis(_) => "redis",
                },
            )
            .finish()
    }
}

impl Cache {
    pub fn new(settings: &CacheSettings) -> Result<Arc<Self>, String> {
        let store = match &settings.backend {
            Backend::Local {
                max_bytes,
                max_item_bytes,
            } => Store::Memory(MemoryStore::new(*max_bytes, *max_item_bytes)),
            Backend::Redis { target, timeout } => {
                Store::Redis(redis::RedisStore::new(target, *timeout)?)
            }
        };
        Ok(Arc::new(Self {
            settings: settings.clone(),
            store,
            flights: Arc::new(Flights::default()),
            usage_probe: {
                let mut s = crate::meter::Sinks::default();
                s.add(Arc::new(Discard));
                Arc::new(s)
            },
        }))
    }

    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    /// Whether calls of this type may be answered from the cache at all.
    pub fn serves(&self, call: CallType) -> bool {
        CallKind::of(call).is_some_and(|k| self.settings.call_types.contains(&k))
    }

    async fn get(&self, key: &str) -> Option<(Bytes, Duration)> {
        match &self.store {
            Store::Memory(m) => m.get(key),
            Store::Redis(r) => r.get(key).await,
        }
    }

    fn put(&self, key: String, body: Bytes, ttl: Option<Duration>) {
        match &self.store {
            Store::Memory(m) => m.put(&key, body, ttl),
            Store::Redis(r) => r.put(key, body, ttl),
        }
    }
}

/// LiteLLM's per-request cache controls: the body's `cache` object, and the
/// `Cache-Control` request header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controls {
    /// Do not answer from the cache (still store the fresh answer).
    pub no_cache: bool,
    /// Do not store this answer.
    pub no_store: bool,
    /// Keep this answer for this long instead of the configured TTL.
    pub ttl: Option<Duration>,
    /// Only accept a stored answer at most this old (`s-maxage`, `max-age`).
    pub max_age: Option<Duration>,
    pub namespace: Option<String>,
    /// `use-cache: true`: opt in when `mode: default_off`.
    pub use_cache: bool,
}

fn secs(v: &Value) -> Option<Duration> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    (f.is_finite() && f >= 0.0).then(|| Duration::from_secs_f64(f))
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl Controls {
    /// From the body's `cache` object (and `metadata.redis_namespace`),
    /// then the `Cache-Control` header. Malformed values are ignored, as
    /// LiteLLM ignores them: a cache control never fails a request.
    pub fn read(extra: &JsonMap, header: Option<&str>) -> Self {
        let mut c = Controls::default();
        if let Some(Value::Object(o)) = extra.get("cache") {
            c.no_cache = truthy(o.get("no-cache"));
            c.no_store = truthy(o.get("no-store"));
            c.use_cache = truthy(o.get("use-cache"));
            c.ttl = o.get("ttl").and_then(secs).filter(|d| !d.is_zero());
            c.max_age = o
                .get("s-maxage")
                .or_else(|| o.get("s-max-age"))
                .and_then(secs);
            c.namespace = o
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        if c.namespace.is_none() {
            c.namespace = extra
                .get("metadata")
                .and_then(|m| m.get("redis_namespace"))
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        for directive in header.unwrap_or_default().split(',') {
            let d = directive.trim().to_ascii_lowercase();
            match d.split_once('=') {
                None if d == "no-cache" => c.no_cache = true,
                None if d == "no-store" => c.no_store = true,
                Some(("max-age" | "s-maxage", v)) => {
                    if let Some(age) = secs(&Value::String(v.trim_matches('"').to_owned())) {
                        c.max_age = Some(c.max_age.map_or(age, |m| m.min(age)));
                    }
                }
                _ => {}
            }
        }
        c
    }
}

/// A request the cache can key and replay.
pub trait Cacheable: Serialize {
    fn streams(&self) -> bool;
    fn include_usage(&self) -> bool;
}

impl Cacheable for ChatRequest {
    fn streams(&self) -> bool {
        self.is_stream()
    }
    fn include_usage(&self) -> bool {
        self.wants_stream_usage()
    }
}

impl Cacheable for CompletionRequest {
    fn streams(&self) -> bool {
        self.is_stream()
    }
    fn include_usage(&self) -> bool {
        self.wants_stream_usage()
    }
}

impl Cacheable for EmbeddingRequest {
    fn streams(&self) -> bool {
        false
    }
    fn include_usage(&self) -> bool {
        false
    }
}

/// A request the cache applies to, before its key is known.
#[derive(Debug)]
pub struct Lookup {
    call: CallType,
    kind: CallKind,
    controls: Controls,
    tags: Vec<String>,
}

impl Lookup {
    /// Whether the cache applies to this request (cache on, call type
    /// supported, opted in under `default_off`, not both `no-cache` and
    /// `no-store`). Reads the body's controls: call it before LiteLLM's
    /// fields are removed from `extra`.
    pub fn read(
        gw: &Gateway,
        ctx: &RequestContext,
        call: CallType,
        extra: &JsonMap,
    ) -> Option<Self> {
        let cache = gw.cache.as_ref()?;
        if !cache.serves(call) {
            return None;
        }
        let controls = Controls::read(extra, ctx.cache_control.as_deref());
        if cache.settings.mode == CacheMode::DefaultOff && !controls.use_cache {
            return None;
        }
        if controls.no_cache && controls.no_store {
            return None;
        }
        let tags = extra
            .get("metadata")
            .and_then(|m| m.get("tags"))
            .or_else(|| extra.get("tags"))
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            call,
            kind: CallKind::of(call)?,
            controls,
            tags,
        })
    }

    /// The key of `req` (its LiteLLM fields already removed) asked for as
    /// `requested`. `None` when the name resolves to no model group (the
    /// pipeline then reports that) or the request cannot be encoded.
    pub fn keyed<R: Cacheable>(self, gw: &Gateway, requested: &str, req: &R) -> Option<Keyed> {
        let cache = gw.cache.as_ref()?;
        let resolved = gw.router.resolve(requested)?;
        let model = match &resolved.wildcard_match {
            Some(m) => format!("{}\0{m}", resolved.group),
            None => resolved.group.to_owned(),
        };
        let body = serde_json::to_value(req).ok()?;
        let hash = key::hash(self.call.as_str(), &model, &body);
        let namespace = self
            .controls
            .namespace
            .as_deref()
            .or(cache.settings.namespace.as_deref());
        Some(Keyed {
            key: key::with_namespace(namespace, &hash),
            group: resolved.group.to_owned(),
            stream: req.streams(),
            include_usage: req.include_usage(),
            end_user: body.get("user").and_then(Value::as_str).map(str::to_owned),
            lookup: self,
        })
    }
}

/// A request with its cache key.
#[derive(Debug)]
pub struct Keyed {
    lookup: Lookup,
    pub key: String,
    group: String,
    stream: bool,
    include_usage: bool,
    end_user: Option<String>,
}

/// What a pipeline answers, from the cache or upstream.
pub type Served<T> = Result<Outcome<T>, GatewayError>;

/// Answer from the cache, or run `upstream` and store what it answers.
/// Without a key (`None`), just `upstream`.
///
/// Not an `async fn`: without a cache the caller awaits `upstream` itself,
/// and with one the cached path is boxed. A request's future is moved (and
/// so copied) whole several times on its way into the server's boxes; as an
/// `async fn` this held `upstream` in three slots and tripled the size of
/// every pipeline future, cache or not.
pub fn serve<'a, T, F>(
    gw: &'a Gateway,
    ctx: &'a RequestContext,
    keyed: Option<Keyed>,
    requested: &'a str,
    upstream: F,
) -> Either<F, Pin<Box<impl Future<Output = Served<T>> + 'a>>>
where
    T: Serialize + 'a,
    F: Future<Output = Served<T>> + 'a,
{
    match (keyed, gw.cache.clone()) {
        (Some(k), Some(cache)) => Either::Right(Box::pin(serve_cached(
            gw, ctx, k, cache, requested, upstream,
        ))),
        _ => Either::Left(upstream),
    }
}

async fn serve_cached<T, F>(
    gw: &Gateway,
    ctx: &RequestContext,
    k: Keyed,
    cache: Arc<Cache>,
    requested: &str,
    upstream: F,
) -> Result<Outcome<T>, GatewayError>
where
    T: Serialize,
    F: Future<Output = Result<Outcome<T>, GatewayError>>,
{
    let c = &k.lookup.controls;
    let mut leader = None;
    if !c.no_cache {
        if let Some((body, age)) = cache.get(&k.key).await {
            if c.max_age.is_none_or(|m| age <= m) {
                if let Some(o) = hit(gw, ctx, &k, requested, &body) {
                    return Ok(o);
                }
            }
        }
        if cache.settings.coalesce {
            // Streams and `no-store` requests wait for a flight but never
            // lead one (their answer would not be shared).
            let role = if k.stream || c.no_store {
                cache.flights.waiter(&k.key).map(coalesce::Role::Waiter)
            } else {
                Some(cache.flights.join(&k.key))
            };
            match role {
                Some(coalesce::Role::Waiter(w)) => {
                    if let Some(body) = w.wait(cache.settings.coalesce_wait).await {
                        if let Some(o) = hit(gw, ctx, &k, requested, &body) {
                            return Ok(o);
                        }
                    }
                    tracing::debug!(key = %k.key, "identical request in flight failed or is slow; going upstream");
                }
                Some(coalesce::Role::Leader(l)) => leader = Some(l),
                None => {}
            }
        }
    }
    if k.stream && !c.no_store && gw.sinks.is_empty() {
        ctx.meter.bind(&cache.usage_probe);
    }
    // A failure drops `leader`, which releases the waiters.
    let mut outcome = upstream.await?;
    if c.no_store {
        return Ok(outcome);
    }
    let ttl = c.ttl.or(cache.settings.ttl);
    let body = match &outcome.answer {
        Answer::Json(t) => serde_json::to_vec(t).ok().map(Bytes::from),
        Answer::Raw(raw) => Some(raw.body.clone()),
        Answer::Stream(_) => None,
    };
    if let Some(body) = body {
        cache.put(k.key.clone(), body.clone(), ttl);
        if let Some(l) = leader {
            l.finish(body);
        }
        return Ok(outcome);
    }
    drop(leader);
    if let Answer::Stream(s) = outcome.answer {
        outcome.answer = Answer::Stream(store_when_done(
            cache,
            k.key,
            ttl,
            k.lookup.kind,
            Arc::clone(&ctx.meter),
            s,
        ));
    }
    Ok(outcome)
}

/// Relay `s` unchanged; when it ends cleanly, store the answer it streamed.
fn store_when_done(
    cache: Arc<Cache>,
    key: String,
    ttl: Option<Duration>,
    kind: CallKind,
    meter: Arc<crate::meter::Meter>,
    s: crate::pipeline::FrameStream,
) -> crate::pipeline::FrameStream {
    let mut job = Some((stream::Assembler::new(kind), cache, key, meter));
    Box::pin(s.map(move |frame| {
        if let (Ok(bytes), Some((asm, ..))) = (&frame, job.as_mut()) {
            asm.feed(bytes);
            if bytes.ends_with(ferrolite_types::sse::DONE_FRAME) {
                if let Some((asm, cache, key, meter)) = job.take() {
                    if let Some(mut answer) = asm.finish() {
                        // The gateway strips the usage chunk this client did
                        // not ask for; the relay recorded it on the meter.
                        if answer.get("usage").is_none() {
                            if let Some(u) = meter.snapshot().usage {
                                if let (Some(o), Ok(u)) =
                                    (answer.as_object_mut(), serde_json::to_value(u))
                                {
                                    o.insert("usage".into(), u);
                                }
                            }
                        }
                        if let Ok(body) = serde_json::to_vec(&answer) {
                            cache.put(key, Bytes::from(body), ttl);
                        }
                    }
                }
            }
        }
        frame
    }))
}

/// The stored `body` as this request's answer, or `None` if it cannot be
/// read (then the request goes upstream).
fn hit<T>(
    gw: &Gateway,
    ctx: &RequestContext,
    k: &Keyed,
    requested: &str,
    body: &[u8],
) -> Option<Outcome<T>> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object_mut()?;
    obj.insert("model".into(), Value::String(requested.to_owned()));
    let usage: Option<Usage> = obj
        .get("usage")
        .filter(|u| !u.is_null())
        .and_then(|u| serde_json::from_value(u.clone()).ok());
    let meta = AnswerMeta {
        model_group: k.group.clone(),
        cache_key: Some(k.key.clone()),
        ..Default::default()
    };
    let meter = &ctx.meter;
    meter.bind(&gw.sinks);
    meter.update(|r| {
        r.call_type = k.lookup.call;
        requested.clone_into(&mut r.requested_model);
        r.stream = k.stream;
        r.principal.clone_from(&ctx.principal);
        r.tags.clone_from(&k.lookup.tags);
        r.end_user.clone_from(&k.end_user);
        r.cache_hit = true;
        r.usage.clone_from(&usage);
        r.meta = meta.clone();
    });
    tracing::debug!(key = %k.key, group = %k.group, "cache hit");
    let answer = if k.stream {
        meter.first_token();
        let frames = stream::replay(k.lookup.kind, &v, requested, k.include_usage);
        let held = Arc::clone(meter);
        Answer::Stream(Box::pin(futures_util::stream::iter(frames).map(move |f| {
            // The record is emitted when the replay is over.
            let _ = &held;
            Ok(f)
        })))
    } else {
        Answer::Raw(RawJson {
            body: Bytes::from(serde_json::to_vec(&v).ok()?),
            usage,
        })
    };
    Some(Outcome { answer, meta })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn controls(body: Value, header: Option<&str>) -> Controls {
        Controls::read(body.as_object().unwrap(), header)
    }

    #[test]
    fn body_controls_as_litellm() {
        let c = controls(
            json!({"cache": {"no-cache": true, "ttl": 30, "s-maxage": 10, "namespace": "ns", "use-cache": true}}),
            None,
        );
        assert!(c.no_cache && !c.no_store && c.use_cache);
        assert_eq!(c.ttl, Some(Duration::from_secs(30)));
        assert_eq!(c.max_age, Some(Duration::from_secs(10)));
        assert_eq!(c.namespace.as_deref(), Some("ns"));
        let c = controls(
            json!({"cache": {"no-store": "true", "s-max-age": "5"}, "metadata": {"redis_namespace": "m"}}),
            None,
        );
        assert!(c.no_store);
        assert_eq!(c.max_age, Some(Duration::from_secs(5)));
        assert_eq!(c.namespace.as_deref(), Some("m"));
        // Nonsense is ignored, never an error.
        assert_eq!(controls(json!({"cache": "yes"}), None), Controls::default());
        assert_eq!(
            controls(json!({"cache": {"ttl": "soon"}}), None),
            Controls::default()
        );
    }

    #[test]
    fn cache_control_header() {
        let c = controls(json!({}), Some("no-cache, No-Store"));
        assert!(c.no_cache && c.no_store);
        let c = controls(json!({"cache": {"s-maxage": 100}}), Some("max-age=20"));
        assert_eq!(c.max_age, Some(Duration::from_secs(20)));
        let c = controls(json!({}), Some("max-age=0"));
        assert_eq!(c.max_age, Some(Duration::ZERO));
        assert_eq!(
            controls(json!({}), Some("private, max-age=x")),
            Controls::default()
        );
    }
}
