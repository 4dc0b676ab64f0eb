//! `/metrics`: LiteLLM's metric names, label sets and values after scripted
//! traffic; auth; the separate port; the per-request log line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{one_model, TestGateway, MASTER};
use ferrolite_core::config::{load_str, Env};
use ferrolite_core::meter::{CallRecord, CallSink};
use ferrolite_core::Gateway;
use ferrolite_server::AppState;
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::{json, Value};
use tokio::sync::Notify;

/// Counts finished calls; registered after the metrics sink, so once it has
/// seen a call the metrics have too.
#[derive(Default)]
struct Seen {
    n: Mutex<usize>,
    added: Notify,
}

impl CallSink for Seen {
    fn record(&self, _: &CallRecord) {
        *self.n.lock().unwrap() += 1;
        self.added.notify_waiters();
    }
}

impl Seen {
    async fn wait(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.added.notified();
            if *self.n.lock().unwrap() >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("only {} of {n} calls recorded", self.n.lock().unwrap());
            }
        }
    }
}

fn config(base: &str, extra: &str) -> String {
    format!(
        "{}litellm_settings:\n  callbacks: [\"prometheus\"]\n{extra}general_settings:\n  master_key: {MASTER}\n",
        one_model("m", base)
    )
}

async fn gateway(yaml: &str) -> (TestGateway, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    let gw = TestGateway::start_with(
        yaml,
        Env::isolated(Vec::<(String, String)>::new()),
        move |g| g.add_sink(s),
    )
    .await;
    (gw, seen)
}

/// One sample of the exposition: name, labels (in order), value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

/// A small parser for the OpenMetrics / Prometheus text format: enough to
/// check every sample line is well formed and to read it back.
fn parse(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let mut labels = Vec::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (k, after) = rest.split_once("=\"").unwrap();
                    let mut v = String::new();
                    let mut chars = after.char_indices();
                    let mut end = after.len();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => v.push(chars.next().unwrap().1),
                            '"' => {
                                end = i + 1;
                                break;
                            }
                            c => v.push(c),
                        }
                    }
                    labels.push((k.to_owned(), v));
                    rest = after[end..].trim_start_matches(',');
                }
                (name.to_owned(), labels)
            }
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    (types, samples)
}

async fn scrape(gw: &TestGateway) -> (String, Vec<Sample>, BTreeMap<String, String>) {
    let r = gw.get("/metrics").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    let (types, samples) = parse(&text);
    (text, samples, types)
}

fn find<'a>(samples: &'a [Sample], name: &str, want: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name && want.iter().all(|(k, v)| s.label(k) == Some(v)))
        .collect()
}

fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, want);
    assert_eq!(found.len(), 1, "{name} {want:?}: {found:?}");
    found[0].value
}

fn names(s: &Sample) -> Vec<&str> {
    s.labels.iter().map(|(k, _)| k.as_str()).collect()
}

#[tokio::test]
async fn success_failure_and_stream_are_counted_with_litellms_names_and_labels() {
    let up = MockOpenAi::start().await;
    let (gw, seen) = gateway(&config(&up.base_url(), "")).await;
    let model_id = {
        let (s, h, _) = gw
            .call(
                "/v1/chat/completions",
                json!({"model":"m","messages":[{"role":"user","content":"hi"}]}),
            )
            .await;
        assert_eq!(s, 200);
        h["x-litellm-model-id"].to_str().unwrap().to_owned()
    };
    let (s, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"stream":true}),
        )
        .await;
    assert_eq!((s, frames.last().unwrap().as_str()), (200, "[DONE]"));
    up.script([Reply::Error {
        status: 400,
        message: "bad".into(),
        kind: "invalid_request_error".into(),
        headers: vec![],
    }]);
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 400);
    let secret = "unconfigured-model-name-4711";
    let (s, _, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":secret,"messages":[]}),
        )
        .await;
    assert_eq!(s, 400);
    seen.wait(4).await;

    let (text, samples, types) = scrape(&gw).await;
    assert!(
        !text.contains(secret),
        "a raw unknown model name is a label"
    );

    // Types and the `_total` suffix of counters, as LiteLLM's client writes
    // them (families with no series yet are not listed).
    for (name, kind) in [
        ("litellm_proxy_total_requests_metric", "counter"),
        ("litellm_proxy_failed_requests_metric", "counter"),
        ("litellm_requests_metric", "counter"),
        ("litellm_spend_metric", "counter"),
        ("litellm_total_tokens_metric", "counter"),
        ("litellm_input_tokens_metric", "counter"),
        ("litellm_output_tokens_metric", "counter"),
        ("litellm_deployment_success_responses", "counter"),
        ("litellm_deployment_total_requests", "counter"),
        ("litellm_request_total_latency_metric", "histogram"),
        ("litellm_llm_api_latency_metric", "histogram"),
        ("litellm_llm_api_time_to_first_token_metric", "histogram"),
        ("litellm_deployment_state", "gauge"),
        ("litellm_in_flight_requests", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("process_cpu_seconds", "counter"),
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some(kind), "{name}");
    }

    let ok = [("requested_model", "m"), ("status_code", "200")];
    let total = find(&samples, "litellm_proxy_total_requests_metric_total", &ok);
    assert_eq!(total.len(), 1, "{total:?}");
    assert_eq!(total[0].value, 2.0);
    assert_eq!(
        names(total[0]),
        [
            "end_user",
            "hashed_api_key",
            "api_key_alias",
            "requested_model",
            "team",
            "team_alias",
            "user",
            "status_code",
            "user_email",
            "route",
            "client_ip",
            "user_agent",
            "model_id",
            "api_provider",
            "org_id",
            "org_alias"
        ]
    );
    assert_eq!(total[0].label("route"), Some("/chat/completions"));
    assert_eq!(total[0].label("model_id"), Some(model_id.as_str()));
    assert_eq!(total[0].label("api_provider"), Some("openai"));
    assert_eq!(total[0].label("end_user"), Some("None"));

    // The upstream's 400, and the unknown model under `other`.
    let failed = value(
        &samples,
        "litellm_proxy_failed_requests_metric_total",
        &[
            ("requested_model", "m"),
            ("exception_status", "400"),
            ("exception_class", "Openai.BadRequestError"),
        ],
    );
    assert_eq!(failed, 1.0);
    let other = value(
        &samples,
        "litellm_proxy_failed_requests_metric_total",
        &[("requested_model", "other"), ("exception_status", "400")],
    );
    assert_eq!(other, 1.0);
    assert_eq!(
        value(
            &samples,
            "litellm_proxy_total_requests_metric_total",
            &[("requested_model", "other"), ("status_code", "400")]
        ),
        1.0
    );

    let dep = [
        ("model", "upstream-m"),
        ("requested_model", "m"),
        ("model_id", model_id.as_str()),
    ];
    assert_eq!(value(&samples, "litellm_requests_metric_total", &dep), 2.0);
    // JSON answer 9 + 12, stream 9 + 12.
    assert_eq!(
        value(&samples, "litellm_input_tokens_metric_total", &dep),
        18.0
    );
    assert_eq!(
        value(&samples, "litellm_output_tokens_metric_total", &dep),
        24.0
    );
    assert_eq!(
        value(&samples, "litellm_total_tokens_metric_total", &dep),
        42.0
    );
    assert_eq!(value(&samples, "litellm_spend_metric_total", &dep), 0.0);
    let tokens = find(&samples, "litellm_input_tokens_metric_total", &dep);
    assert_eq!(
        names(tokens[0]),
        [
            "end_user",
            "hashed_api_key",
            "api_key_alias",
            "model",
            "team",
            "team_alias",
            "user",
            "user_email",
            "requested_model",
            "model_id",
            "api_provider",
            "org_id",
            "org_alias"
        ]
    );

    let d = [
        ("litellm_model_name", "upstream-m"),
        ("model_id", model_id.as_str()),
    ];
    assert_eq!(
        value(&samples, "litellm_deployment_success_responses_total", &d),
        2.0
    );
    // Every attempt counts on its deployment, the upstream's 400 too.
    assert_eq!(
        value(&samples, "litellm_deployment_total_requests_total", &d),
        3.0
    );
    assert_eq!(
        value(
            &samples,
            "litellm_deployment_failure_responses_total",
            &[
                ("model_id", model_id.as_str()),
                ("exception_status", "400"),
                ("exception_class", "Openai.BadRequestError")
            ]
        ),
        1.0
    );
    let state = find(&samples, "litellm_deployment_state", &d);
    assert_eq!(
        names(state[0]),
        ["litellm_model_name", "model_id", "api_base", "api_provider"]
    );
    // Its last attempt failed: a partial outage, as LiteLLM reports it.
    assert_eq!(state[0].value, 1.0);
    assert_eq!(state[0].label("api_base"), Some(up.base_url().as_str()));

    // Histograms: LiteLLM's buckets; time to first token for the stream only.
    let buckets: Vec<&str> = find(
        &samples,
        "litellm_request_total_latency_metric_bucket",
        &[("requested_model", "m")],
    )
    .iter()
    .map(|s| s.label("le").unwrap())
    .collect();
    assert_eq!(
        buckets,
        [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.0", "5.0", "10.0",
            "30.0", "60.0", "120.0", "300.0", "420.0", "600.0", "+Inf"
        ]
    );
    assert_eq!(
        value(
            &samples,
            "litellm_request_total_latency_metric_count",
            &[("requested_model", "m")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &samples,
            "litellm_llm_api_latency_metric_count",
            &[("requested_model", "m")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &samples,
            "litellm_llm_api_time_to_first_token_metric_count",
            &[("requested_model", "m")]
        ),
        1.0
    );

    assert!(value(&samples, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&samples, "process_open_fds", &[]) >= 3.0);
    assert_eq!(value(&samples, "litellm_in_flight_requests", &[]), 0.0);
}

#[tokio::test]
async fn metrics_need_a_key_unless_require_auth_is_off() {
    let up = MockOpenAi::start().await;
    let (gw, _) = gateway(&config(&up.base_url(), "")).await;
    let r = gw.http.get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    let text = body.as_str().expect("a JSON string, as LiteLLM");
    assert!(
        text.starts_with("Unauthorized access to metrics endpoint:"),
        "{text}"
    );
    assert!(text.contains("require_auth_for_metrics_endpoint: false"));
    let r = gw
        .http
        .get(gw.url("/metrics/"))
        .bearer_auth("sk-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(gw.get("/metrics").send().await.unwrap().status(), 200);
    assert_eq!(gw.get("/metrics/").send().await.unwrap().status(), 200);

    let (open, _) = gateway(&config(
        &up.base_url(),
        "  require_auth_for_metrics_endpoint: false\n",
    ))
    .await;
    let r = open.http.get(open.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Only /metrics is opened.
    let r = open.http.get(open.url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn without_the_prometheus_callback_there_is_no_metrics_endpoint() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    assert_eq!(gw.get("/metrics").send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn the_metrics_port_serves_metrics_alone_without_a_key() {
    let up = MockOpenAi::start().await;
    let cfg = load_str(
        &config(&up.base_url(), ""),
        Path::new("."),
        &Env::isolated(Vec::<(String, String)>::new()),
    )
    .unwrap();
    let mut gw = Gateway::new(cfg).unwrap();
    let seen = Arc::new(Seen::default());
    gw.add_sink(Arc::clone(&seen) as Arc<dyn CallSink>);
    let state = AppState::new(gw);
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (main_addr, metrics_addr) = (main.local_addr().unwrap(), metrics.local_addr().unwrap());
    tokio::spawn(ferrolite_server::routes::metrics::serve_standalone(
        metrics,
        state.clone(),
    ));
    tokio::spawn(ferrolite_server::serve(main, state, std::future::pending()));
    let http = ferrolite_core::upstream::client().unwrap();
    let r = http
        .post(format!("http://{main_addr}/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&json!({"model":"m","messages":[]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    seen.wait(1).await;
    let r = http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, samples) = parse(&r.text().await.unwrap());
    assert_eq!(
        value(
            &samples,
            "litellm_proxy_total_requests_metric_total",
            &[("requested_model", "m")]
        ),
        1.0
    );
    // Nothing else is served there.
    let r = http
        .get(format!("http://{metrics_addr}/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// A `MakeWriter` collecting log output in memory.
#[derive(Clone, Default)]
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    wrote: Arc<Notify>,
}

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.lock().unwrap().extend_from_slice(b);
        self.wrote.notify_waiters();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    async fn line_with(&self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.wrote.notified();
            let text = String::from_utf8(self.buf.lock().unwrap().clone()).unwrap();
            if let Some(l) = text.lines().find(|l| l.contains(needle)) {
                return l.to_owned();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no log line with {needle}: {text}");
            }
        }
    }
}

#[tokio::test]
async fn one_json_log_line_per_request_without_the_prompt() {
    let capture = Capture::default();
    // The same format `json_logs: true` selects in main.rs.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(capture.clone())
        .json()
        .flatten_event(true)
        .finish();
    // The test runtime has one thread: the server's tasks log here too.
    let _guard = tracing::subscriber::set_default(subscriber);
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let prompt = "my very private prompt";
    let (s, h, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"m","messages":[{"role":"user","content":prompt}]}),
        )
        .await;
    assert_eq!(s, 200);
    let id = h["x-litellm-call-id"].to_str().unwrap().to_owned();
    let line = capture.line_with(&id).await;
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["target"], "ferrolite::request");
    assert_eq!(v["message"], "request");
    assert_eq!(v["request_id"], id.as_str());
    assert_eq!(v["model"], "m");
    assert_eq!(v["model_group"], "m");
    assert_eq!(v["deployment"], h["x-litellm-model-id"].to_str().unwrap());
    assert_eq!(v["upstream_model"], "openai/upstream-m");
    assert_eq!(v["status"], 200);
    assert_eq!(v["prompt_tokens"], 9);
    assert_eq!(v["completion_tokens"], 12);
    assert_eq!(v["cost"], 0.0);
    assert!(v["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(v["key_alias"], "");
    let all = String::from_utf8(capture.buf.lock().unwrap().clone()).unwrap();
    assert!(!all.contains(prompt), "the prompt was logged");
    assert!(!all.contains(MASTER), "the key was logged");
}

/// Two model groups, `m` on `a` and `fb` on `b`, and `extra` settings.
fn two_groups(a: &str, b: &str, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/up-a, api_base: \"{a}\", api_key: k}}\n  - model_name: fb\n    litellm_params: {{model: openai/up-b, api_base: \"{b}\", api_key: k}}\n{extra}general_settings:\n  master_key: {MASTER}\n"
    )
}

/// The `model_id` of the deployment whose API base is `base`.
fn model_id_of(samples: &[Sample], base: &str) -> String {
    let s = find(samples, "litellm_deployment_state", &[("api_base", base)]);
    assert_eq!(s.len(), 1, "{s:?}");
    s[0].label("model_id").unwrap().to_owned()
}

fn server_error() -> Reply {
    Reply::Error {
        status: 500,
        message: "upstream broke".into(),
        kind: "server_error".into(),
        headers: vec![],
    }
}

#[tokio::test]
async fn every_attempt_counts_on_its_deployment_a_500_then_a_fallback() {
    let a = MockOpenAi::start().await;
    let b = MockOpenAi::start().await;
    a.script([server_error()]);
    let yaml = two_groups(
        &a.base_url(),
        &b.base_url(),
        "litellm_settings:\n  callbacks: [\"prometheus\"]\n  num_retries: 0\n  fallbacks: [{\"m\": [\"fb\"]}]\n",
    );
    let (gw, seen) = gateway(&yaml).await;
    let (s, h, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["x-litellm-model-api-base"], b.base_url());
    assert_eq!(a.call_count(), 1);
    seen.wait(1).await;

    let (_, samples, types) = scrape(&gw).await;
    for name in [
        "litellm_deployment_failure_responses",
        "litellm_deployment_success_responses",
        "litellm_deployment_total_requests",
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some("counter"));
    }
    let (id_a, id_b) = (
        model_id_of(&samples, &a.base_url()),
        model_id_of(&samples, &b.base_url()),
    );
    let failed = find(
        &samples,
        "litellm_deployment_failure_responses_total",
        &[("model_id", id_a.as_str())],
    );
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].value, 1.0);
    assert_eq!(
        failed[0].labels,
        [
            ("model_group", "m"),
            ("requested_model", "m"),
            ("litellm_model_name", "up-a"),
            ("model_id", id_a.as_str()),
            ("api_base", a.base_url().as_str()),
            ("api_provider", "openai"),
            ("exception_status", "500"),
            ("exception_class", "Openai.InternalServerError"),
            ("hashed_api_key", "None"),
            ("api_key_alias", "None"),
            ("team", "None"),
            ("team_alias", "None"),
            ("client_ip", "None"),
            ("user_agent", "None"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    // The fallback's success is on its own group, for the model asked for.
    let ok = find(
        &samples,
        "litellm_deployment_success_responses_total",
        &[("model_id", id_b.as_str())],
    );
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(ok[0].value, 1.0);
    assert_eq!(
        names(ok[0]),
        [
            "model_group",
            "requested_model",
            "litellm_model_name",
            "model_id",
            "api_base",
            "api_provider",
            "hashed_api_key",
            "api_key_alias",
            "team",
            "team_alias",
            "client_ip",
            "user_agent"
        ]
    );
    assert_eq!(ok[0].label("model_group"), Some("fb"));
    assert_eq!(ok[0].label("requested_model"), Some("m"));
    assert_eq!(ok[0].label("litellm_model_name"), Some("up-b"));
    assert!(find(
        &samples,
        "litellm_deployment_success_responses_total",
        &[("model_id", id_a.as_str())]
    )
    .is_empty());
    for id in [&id_a, &id_b] {
        assert_eq!(
            value(
                &samples,
                "litellm_deployment_total_requests_total",
                &[("model_id", id.as_str())]
            ),
            1.0
        );
    }
    // One 500 is within allowed_fails: a partial outage, no cooldown.
    let state = |id: &str| value(&samples, "litellm_deployment_state", &[("model_id", id)]);
    assert_eq!((state(&id_a), state(&id_b)), (1.0, 0.0));
    assert!(find(&samples, "litellm_deployment_cooled_down_total", &[]).is_empty());
    // The client's request succeeded.
    assert_eq!(
        value(
            &samples,
            "litellm_proxy_total_requests_metric_total",
            &[("requested_model", "m"), ("status_code", "200")]
        ),
        1.0
    );
}

#[tokio::test]
async fn a_429_with_retry_after_cools_the_deployment_down() {
    let a = MockOpenAi::start().await;
    let b = MockOpenAi::start().await;
    a.script([Reply::Error {
        status: 429,
        message: "Rate limit reached".into(),
        kind: "requests".into(),
        headers: vec![("retry-after".into(), "30".into())],
    }]);
    // `order` sends the first attempt to `a`.
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/up-a, api_base: \"{}\", api_key: k, order: 1}}\n  - model_name: m\n    litellm_params: {{model: openai/up-b, api_base: \"{}\", api_key: k, order: 2}}\nrouter_settings:\n  num_retries: 1\nlitellm_settings:\n  callbacks: [\"prometheus\"]\ngeneral_settings:\n  master_key: {MASTER}\n",
        a.base_url(),
        b.base_url()
    );
    let (gw, seen) = gateway(&yaml).await;
    let (s, h, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["x-litellm-model-api-base"], b.base_url());
    seen.wait(1).await;

    let (_, samples, types) = scrape(&gw).await;
    assert_eq!(
        types
            .get("litellm_deployment_cooled_down")
            .map(String::as_str),
        Some("counter")
    );
    let (id_a, id_b) = (
        model_id_of(&samples, &a.base_url()),
        model_id_of(&samples, &b.base_url()),
    );
    let cooled = find(&samples, "litellm_deployment_cooled_down_total", &[]);
    assert_eq!(cooled.len(), 1, "{cooled:?}");
    assert_eq!(cooled[0].value, 1.0);
    // LiteLLM's cooldown callback names the model group in litellm_model_name.
    assert_eq!(
        cooled[0].labels,
        [
            ("litellm_model_name", "m"),
            ("model_id", id_a.as_str()),
            ("api_base", a.base_url().as_str()),
            ("api_provider", "openai"),
            ("exception_status", "429"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    let state = |id: &str| value(&samples, "litellm_deployment_state", &[("model_id", id)]);
    assert_eq!(
        (state(&id_a), state(&id_b)),
        (2.0, 0.0),
        "complete outage while cooling down"
    );
    assert_eq!(
        value(
            &samples,
            "litellm_deployment_failure_responses_total",
            &[
                ("model_id", id_a.as_str()),
                ("exception_status", "429"),
                ("exception_class", "Openai.RateLimitError")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "litellm_deployment_success_responses_total",
            &[("model_id", id_b.as_str())]
        ),
        1.0
    );

    // While it cools down, `b` takes the traffic and `a` stays in outage.
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 200);
    seen.wait(2).await;
    assert_eq!(a.call_count(), 1);
    let (_, samples, _) = scrape(&gw).await;
    let state = |id: &str| value(&samples, "litellm_deployment_state", &[("model_id", id)]);
    assert_eq!((state(&id_a), state(&id_b)), (2.0, 0.0));
    assert_eq!(
        value(&samples, "litellm_deployment_cooled_down_total", &[]),
        1.0
    );
}

#[tokio::test]
async fn a_virtual_key_shows_its_remaining_budget_and_its_teams() {
    use ferrolite_server::store_glue::KeysAndSpend;
    use ferrolite_store::{hash_key, Key, Store, Team};

    let up = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/upstream-m\n      api_key: k\n      api_base: {}\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\nlitellm_settings:\n  callbacks: [\"prometheus\"]\ngeneral_settings:\n  master_key: {MASTER}\n",
        up.base_url()
    );
    let store = Arc::new(Store::connect("sqlite::memory:").await.unwrap());
    let seen = Arc::new(Seen::default());
    let mut ks = None;
    let gw = TestGateway::start_with(&yaml, Env::isolated(Vec::<(String, String)>::new()), |g| {
        ks = Some(KeysAndSpend::attach(g, Arc::clone(&store), None));
        g.add_sink(seen.clone());
    })
    .await;
    let _ks = ks.unwrap();
    let now = ferrolite_store::now_ms();
    let mut team = Team::new("team-1".into(), now);
    team.team_alias = Some("Team One".into());
    team.max_budget = Some(5.0);
    store.create_team(&team).await.unwrap();
    let raw = "sk-budgeted";
    let mut k = Key::new(hash_key(raw), "sk-...eted".into(), now);
    k.key_alias = Some("budgeted".into());
    k.max_budget = Some(1.0);
    k.spend = 0.25;
    k.team_id = Some("team-1".into());
    store.create_key(&k).await.unwrap();
    // A key without a budget: remaining +Inf, no max-budget series.
    let free = "sk-free";
    store
        .create_key(&Key::new(hash_key(free), "sk-...free".into(), now))
        .await
        .unwrap();

    for key in [raw, free] {
        let r = gw
            .http
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&json!({"model":"m","messages":[{"role":"user","content":"hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    seen.wait(2).await;

    // 9 input and 12 output tokens: 0.033 USD.
    let (_, samples, types) = scrape(&gw).await;
    for name in [
        "litellm_remaining_api_key_budget_metric",
        "litellm_api_key_max_budget_metric",
        "litellm_remaining_team_budget_metric",
        "litellm_team_max_budget_metric",
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some("gauge"), "{name}");
    }
    let hash = hash_key(raw);
    let remaining = find(
        &samples,
        "litellm_remaining_api_key_budget_metric",
        &[("hashed_api_key", hash.as_str())],
    );
    assert_eq!(remaining.len(), 1, "{remaining:?}");
    assert_eq!(names(remaining[0]), ["hashed_api_key", "api_key_alias"]);
    assert_eq!(remaining[0].label("api_key_alias"), Some("budgeted"));
    assert!(
        (remaining[0].value - (1.0 - 0.25 - 0.033)).abs() < 1e-9,
        "{}",
        remaining[0].value
    );
    assert_eq!(
        value(
            &samples,
            "litellm_api_key_max_budget_metric",
            &[("hashed_api_key", hash.as_str())]
        ),
        1.0
    );
    let team_left = find(&samples, "litellm_remaining_team_budget_metric", &[]);
    assert_eq!(team_left.len(), 1, "{team_left:?}");
    assert_eq!(
        team_left[0].labels,
        [("team", "team-1"), ("team_alias", "Team One")].map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert!((team_left[0].value - (5.0 - 0.033)).abs() < 1e-9);
    assert_eq!(
        value(
            &samples,
            "litellm_team_max_budget_metric",
            &[("team", "team-1")]
        ),
        5.0
    );
    let free_hash = hash_key(free);
    assert_eq!(
        value(
            &samples,
            "litellm_remaining_api_key_budget_metric",
            &[("hashed_api_key", free_hash.as_str())]
        ),
        f64::INFINITY
    );
    assert!(find(
        &samples,
        "litellm_api_key_max_budget_metric",
        &[("hashed_api_key", free_hash.as_str())]
    )
    .is_empty());
}

#[tokio::test]
async fn cache_hits_misses_and_cached_tokens_are_counted() {
    let up = MockOpenAi::start().await;
    let (gw, seen) = gateway(&config(
        &up.base_url(),
        "  cache: true\n  cache_params: {type: local}\n",
    ))
    .await;
    let body = json!({"model":"m","messages":[{"role":"user","content":"same"}]});
    for n in 1..=2 {
        let (s, h, _) = gw.call("/v1/chat/completions", body.clone()).await;
        assert_eq!(s, 200);
        assert_eq!(h.get("x-litellm-cache-key").is_some(), n == 2);
        seen.wait(n).await;
    }
    assert_eq!(up.call_count(), 1);
    let (_, samples, types) = scrape(&gw).await;
    for name in [
        "litellm_cache_hits_metric",
        "litellm_cache_misses_metric",
        "litellm_cached_tokens_metric",
    ] {
        assert_eq!(
            types.get(name).map(String::as_str),
            Some("counter"),
            "{name}"
        );
    }
    let hits = find(&samples, "litellm_cache_hits_metric_total", &[]);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].value, 1.0);
    assert_eq!(
        names(hits[0]),
        [
            "model",
            "hashed_api_key",
            "api_key_alias",
            "team",
            "team_alias",
            "end_user",
            "user",
            "model_id",
            "api_provider"
        ]
    );
    // The mock's 9 + 12 tokens, served from the cache.
    assert_eq!(
        value(&samples, "litellm_cached_tokens_metric_total", &[]),
        21.0
    );
    let misses = find(&samples, "litellm_cache_misses_metric_total", &[]);
    assert_eq!(misses.len(), 1, "{misses:?}");
    assert_eq!(misses[0].value, 1.0);
    assert_eq!(misses[0].label("model"), Some("upstream-m"));
    // The hit reached no deployment.
    assert_eq!(
        value(&samples, "litellm_deployment_total_requests_total", &[]),
        1.0
    );
}
