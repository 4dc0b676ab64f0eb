//! OpenTelemetry traces: spans reach an in-process OTLP/HTTP receiver with
//! the GenAI attributes and the caller's trace as parent; the upstream gets
//! the trace context; nothing of it happens with otel off; a dead collector
//! slows nothing down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::{one_model, TestGateway};
use ferrolite_core::config::Env;
use ferrolite_core::observe::otel::Otel;
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// One export request the receiver got.
struct Export {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// An OTLP/HTTP receiver on 127.0.0.1:0.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Export>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Export {
                    path: uri.path().to_owned(),
                    headers,
                    body,
                });
                "{}"
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, rx)
}

fn env(vars: &[(&str, &str)]) -> Env {
    Env::isolated(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn config(base: &str, otel: bool) -> String {
    let callbacks = if otel { "[\"otel\"]" } else { "[]" };
    format!(
        "{}litellm_settings:\n  callbacks: {callbacks}\n",
        one_model("m", base)
    )
}

async fn start(yaml: &str, env: Env) -> (TestGateway, Option<Arc<Otel>>) {
    let mut otel = None;
    let gw = TestGateway::start_with(yaml, env, |g| otel = g.otel.clone()).await;
    (gw, otel)
}

/// Every span of the JSON exports received, until `n` have arrived.
async fn spans(rx: &mut mpsc::UnboundedReceiver<Export>, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} spans exported", out.len()))
            .unwrap();
        assert_eq!(e.path, "/v1/traces");
        assert_eq!(e.headers["content-type"], "application/json");
        assert_eq!(e.headers["x-api-key"], "collector secret");
        let v: Value = serde_json::from_slice(&e.body).unwrap();
        let rs = &v["resourceSpans"][0];
        let service = rs["resource"]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == "service.name")
            .unwrap();
        assert_eq!(service["value"]["stringValue"], "gw-test");
        for s in rs["scopeSpans"][0]["spans"].as_array().unwrap() {
            out.push(s.clone());
        }
    }
    out
}

fn attr(span: &Value, key: &str) -> Value {
    span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| {
            let v = &a["value"];
            ["stringValue", "intValue", "doubleValue", "boolValue"]
                .iter()
                .find_map(|k| v.get(*k).cloned())
                .unwrap()
        })
        .unwrap_or(Value::Null)
}

fn json_env(url: &str) -> Env {
    env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", url),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=collector%20secret"),
        ("OTEL_SERVICE_NAME", "gw-test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "20"),
    ])
}

#[tokio::test]
async fn request_span_continues_the_callers_trace_and_upstream_gets_it() {
    let up = MockOpenAi::start().await;
    let (url, mut rx) = receiver().await;
    let (gw, _) = start(&config(&up.base_url(), true), json_env(&url)).await;
    let r = gw
        .post("/v1/chat/completions")
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let call_id = r.headers()["x-litellm-call-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let got = spans(&mut rx, 2).await;
    let req = got.iter().find(|s| s["kind"] == 2).expect("request span");
    let att = got.iter().find(|s| s["kind"] == 3).expect("attempt span");

    assert_eq!(req["name"], "chat m");
    assert_eq!(req["traceId"], CALLER_TRACE);
    assert_eq!(req["parentSpanId"], CALLER_SPAN);
    assert_eq!(attr(req, "gen_ai.operation.name"), "chat");
    assert_eq!(attr(req, "gen_ai.request.model"), "m");
    assert_eq!(attr(req, "gen_ai.response.model"), "upstream-m");
    assert_eq!(attr(req, "gen_ai.provider.name"), "openai");
    assert_eq!(attr(req, "gen_ai.system"), "openai");
    assert!(attr(req, "gen_ai.usage.input_tokens").is_string());
    assert!(attr(req, "gen_ai.usage.output_tokens").is_string());
    assert_eq!(attr(req, "litellm.call_id"), call_id.as_str());
    assert_eq!(attr(req, "litellm.model_group"), "m");
    assert_eq!(attr(req, "litellm.cache_hit"), false);
    assert_eq!(attr(req, "http.response.status_code"), "200");
    assert!(attr(req, "litellm.model_id").is_string());
    assert_eq!(attr(req, "error.type"), Value::Null);
    let start: u64 = req["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = req["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(end >= start && start > 0);

    assert_eq!(att["traceId"], CALLER_TRACE);
    assert_eq!(att["parentSpanId"], req["spanId"]);
    assert_eq!(att["name"], "chat upstream-m");
    assert_eq!(attr(att, "gen_ai.request.model"), "upstream-m");

    // The upstream saw this trace, with the attempt span as its parent.
    let calls = up.calls();
    let tp = calls[0].headers["traceparent"].to_str().unwrap();
    assert_eq!(
        tp,
        format!("00-{CALLER_TRACE}-{}-01", att["spanId"].as_str().unwrap())
    );
}

#[tokio::test]
async fn every_attempt_is_a_child_span_and_errors_are_marked() {
    let up = MockOpenAi::start().await;
    up.script([Reply::error(500, "upstream broke")]);
    let (url, mut rx) = receiver().await;
    let (gw, _) = start(&config(&up.base_url(), true), json_env(&url)).await;
    let (status, _, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 200);
    let got = spans(&mut rx, 3).await;
    let req = got.iter().find(|s| s["kind"] == 2).unwrap();
    // No caller: a new trace, no parent.
    assert!(req.get("parentSpanId").is_none());
    assert_eq!(attr(req, "litellm.retries"), "1");
    let attempts: Vec<&Value> = got.iter().filter(|s| s["kind"] == 3).collect();
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        assert_eq!(a["traceId"], req["traceId"]);
        assert_eq!(a["parentSpanId"], req["spanId"]);
    }
    let failed: Vec<&&Value> = attempts
        .iter()
        .filter(|a| a["status"]["code"] == 2)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(attr(failed[0], "http.response.status_code"), "500");
    assert_eq!(attr(failed[0], "error.type"), "InternalServerError");
    // Each attempt sent its own span id upstream, in the same trace.
    let sent: Vec<String> = up
        .calls()
        .iter()
        .map(|c| c.headers["traceparent"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0], sent[1]);
    for tp in &sent {
        assert!(tp.contains(req["traceId"].as_str().unwrap()), "{tp}");
    }
}

#[tokio::test]
async fn a_failed_request_has_an_error_span() {
    let up = MockOpenAi::start().await;
    let (url, mut rx) = receiver().await;
    let (gw, _) = start(&config(&up.base_url(), true), json_env(&url)).await;
    up.script([Reply::error(400, "bad input")]);
    let (status, _, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 400);
    let got = spans(&mut rx, 2).await;
    let req = got.iter().find(|s| s["kind"] == 2).unwrap();
    assert_eq!(req["status"]["code"], 2);
    assert_eq!(attr(req, "http.response.status_code"), "400");
    assert_eq!(attr(req, "error.type"), "BadRequestError");
    assert!(attr(req, "litellm.error_kind").is_string());
}

#[tokio::test]
async fn protobuf_is_the_default_protocol() {
    let up = MockOpenAi::start().await;
    let (url, mut rx) = receiver().await;
    let (gw, otel) = start(
        &config(&up.base_url(), true),
        env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            &format!("{url}/custom/path"),
        )]),
    )
    .await;
    let r = gw
        .post("/v1/chat/completions")
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await.unwrap();
    // The default schedule is 5 s: shutdown sends what is queued now.
    drop(gw);
    otel.unwrap().shutdown(Duration::from_secs(5)).await;
    let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.path, "/custom/path");
    assert_eq!(e.headers["content-type"], "application/x-protobuf");
    let trace: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&CALLER_TRACE[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert!(e.body.windows(16).any(|w| w == trace.as_slice()));
    assert!(e.body.windows(6).any(|w| w == b"chat m"));
}

#[tokio::test]
async fn with_otel_off_nothing_is_traced_or_sent() {
    let up = MockOpenAi::start().await;
    let (url, mut rx) = receiver().await;
    let (gw, otel) = start(&config(&up.base_url(), false), json_env(&url)).await;
    assert!(otel.is_none());
    let r = gw
        .post("/v1/chat/completions")
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await.unwrap();
    assert!(up.calls()[0].headers.get("traceparent").is_none());
    assert!(up.calls()[0].headers.get("tracestate").is_none());
    // A negative: give an exporter (20 ms schedule) ample time to have sent.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "something was exported with otel off"
    );
}

#[tokio::test]
async fn a_dead_collector_slows_nothing_down() {
    // A collector that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let up = MockOpenAi::start().await;
    let (gw, otel) = start(
        &config(&up.base_url(), true),
        env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
            ("OTEL_BSP_SCHEDULE_DELAY", "1"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2"),
        ]),
    )
    .await;
    let otel = otel.unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        let (status, _, _) = gw
            .call(
                "/v1/chat/completions",
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        assert_eq!(status, 200);
    }
    // 20 requests against a local mock: far below the export timeout.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The exporter is stuck on its first batch; the bounded queue dropped
    // the oldest of the 40 spans.
    assert!(otel.dropped() >= 30, "dropped {}", otel.dropped());
    assert_eq!(otel.exported(), 0);
    // Shutdown gives up on the dead collector within its limit.
    let t = Instant::now();
    drop(gw);
    otel.shutdown(Duration::from_millis(500)).await;
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_stream_is_traced_when_it_ends() {
    let up = MockOpenAi::start().await;
    let (url, mut rx) = receiver().await;
    let (gw, _) = start(&config(&up.base_url(), true), json_env(&url)).await;
    let (status, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let got = spans(&mut rx, 2).await;
    let req = got.iter().find(|s| s["kind"] == 2).unwrap();
    let att = got.iter().find(|s| s["kind"] == 3).unwrap();
    assert_eq!(attr(req, "litellm.stream"), true);
    assert!(attr(req, "litellm.time_to_first_token_ms").is_number());
    assert_eq!(att["parentSpanId"], req["spanId"]);
    assert!(up.calls()[0].headers.contains_key("traceparent"));
}
