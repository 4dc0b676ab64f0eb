#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant, UNIX_EPOCH};

use ferrolite_testkit::MockWebhook;
use ferrolite_types::{Secret, Usage};
use serde_json::{json, Value};

use super::*;
use crate::auth::Principal;
use crate::meter::{CallError, CallType};
use crate::pipeline::AnswerMeta;

const WAIT: Duration = Duration::from_secs(5);

fn record(id: &str) -> CallRecord {
    CallRecord {
        call_id: id.to_owned(),
        call_type: CallType::Chat,
        start_time: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)),
        latency: Duration::from_millis(1500),
        requested_model: "gpt".into(),
        meta: AnswerMeta {
            model_id: "dep-1".into(),
            model_group: "gpt".into(),
            api_base: Some("https://api.openai.com/v1/".into()),
            upstream_model: "openai/gpt-4o-mini".into(),
            ..Default::default()
        },
        usage: Some(Usage::new(9, 12)),
        cost: 0.033,
        tags: vec!["prod".into()],
        end_user: Some("customer-7".into()),
        principal: Some(std::sync::Arc::new(Principal {
            key_hash: Some("ab12".into()),
            key_alias: Some("ci-key".into()),
            user_id: Some("u1".into()),
            team_id: Some("t1".into()),
            team_alias: Some("Team One".into()),
            admin: false,
            model_alias: None,
            hold: None,
        })),
        ..Default::default()
    }
}

fn failed(id: &str) -> CallRecord {
    let mut r = record(id);
    r.usage = None;
    r.cost = 0.0;
    r.error = Some(CallError {
        status: 429,
        class: "upstream_error",
        message: "rate limited upstream".into(),
    });
    r
}

fn quick(url: &str) -> WebhookSettings {
    let mut s = WebhookSettings::to_url(url).unwrap();
    s.flush_interval = Duration::from_millis(20);
    s.backoff = Duration::from_millis(5);
    s.timeout = Duration::from_secs(2);
    s
}

#[test]
fn a_success_event_has_litellms_fields() {
    let v = serde_json::to_value(Event::from_record(&record("call-1"), None)).unwrap();
    assert_eq!(v["id"], "call-1");
    assert_eq!(v["litellm_call_id"], "call-1");
    assert_eq!(v["call_type"], "acompletion");
    assert_eq!(v["status"], "success");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["model_group"], "gpt");
    assert_eq!(v["model_id"], "dep-1");
    assert_eq!(v["custom_llm_provider"], "openai");
    assert_eq!(v["api_base"], "https://api.openai.com/v1");
    assert_eq!(v["response_cost"], 0.033);
    assert_eq!(
        (
            &v["prompt_tokens"],
            &v["completion_tokens"],
            &v["total_tokens"]
        ),
        (&json!(9), &json!(12), &json!(21))
    );
    assert_eq!(v["startTime"], 1_700_000_000.25);
    assert_eq!(v["endTime"], 1_700_000_001.75);
    // Not a stream: the completion "starts" when it ends, as in LiteLLM.
    assert_eq!(v["completionStartTime"], 1_700_000_001.75);
    assert_eq!(v["response_time"], 1.5);
    assert_eq!(v["stream"], false);
    assert_eq!(v["cache_hit"], false);
    assert_eq!(v["request_tags"], json!(["prod"]));
    assert_eq!(v["end_user"], "customer-7");
    assert_eq!(
        v["metadata"],
        json!({
            "user_api_key_hash": "ab12",
            "user_api_key_alias": "ci-key",
            "user_api_key_team_id": "t1",
            "user_api_key_team_alias": "Team One",
            "user_api_key_user_id": "u1",
            "user_api_key_end_user_id": "customer-7",
        })
    );
    assert_eq!(
        v["hidden_params"]["litellm_model_name"],
        "openai/gpt-4o-mini"
    );
    assert_eq!(v["error_str"], Value::Null);
    assert_eq!(v["error_information"], Value::Null);
    // No message content, ever.
    assert!(v.get("messages").is_none() && v.get("response").is_none());
}

#[test]
fn a_stream_reports_its_first_token_and_a_failure_its_class() {
    let mut r = record("s");
    r.stream = true;
    r.time_to_first_token = Some(Duration::from_millis(250));
    let v = serde_json::to_value(Event::from_record(&r, None)).unwrap();
    assert_eq!(v["stream"], true);
    assert_eq!(v["completionStartTime"], 1_700_000_000.5);
    assert_eq!(v["response_time"], 0.25);

    let v = serde_json::to_value(Event::from_record(&failed("f"), None)).unwrap();
    assert_eq!(v["status"], "failure");
    assert_eq!(v["error_str"], "rate limited upstream");
    assert_eq!(
        v["error_information"],
        json!({"error_code": "429", "error_class": "RateLimitError", "llm_provider": "openai"})
    );
    assert_eq!(v["total_tokens"], 0);

    // No deployment answered: the model is the name the client sent.
    let mut r = failed("g");
    r.meta = AnswerMeta::default();
    r.error = Some(CallError {
        status: 400,
        class: "unknown_model",
        message: "no such model".into(),
    });
    let v = serde_json::to_value(Event::from_record(&r, None)).unwrap();
    assert_eq!(v["model"], "gpt");
    assert_eq!(v["custom_llm_provider"], Value::Null);
    assert_eq!(v["error_information"]["error_class"], "BadRequestError");
    assert_eq!(v["error_information"]["llm_provider"], "");
    assert_eq!(v["model_group"], "");

    // A failed upstream call: the group and provider from the config.
    let mut r = failed("h");
    r.meta = AnswerMeta::default();
    let g = GroupInfo {
        group: "gpt-group".into(),
        provider: Some("azure".into()),
    };
    let v = serde_json::to_value(Event::from_record(&r, Some(&g))).unwrap();
    assert_eq!(v["model_group"], "gpt-group");
    assert_eq!(v["custom_llm_provider"], "azure");
    assert_eq!(v["error_information"]["llm_provider"], "azure");
}

#[tokio::test]
async fn retried_after_two_500s_and_delivered_exactly_once() {
    let hook = MockWebhook::start().await;
    hook.script([500, 503]);
    let mut s = quick(&hook.url());
    s.headers = vec![(
        http::HeaderName::from_static("authorization"),
        Secret::new("Bearer hook-secret"),
    )];
    let w = Webhook::start(&s);
    let sink = WebhookSink::new(std::slice::from_ref(&w));
    sink.record(&record("a"));
    sink.record(&failed("b"));
    let got = hook.wait_events(2, WAIT).await;
    let ids: Vec<&str> = got.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b"]);
    let d = hook.deliveries();
    assert_eq!(
        d.iter().map(|d| d.status).collect::<Vec<_>>(),
        [500, 503, 200]
    );
    // The same batch each time, with the headers.
    assert!(d.iter().all(|x| x.body == d[0].body));
    assert_eq!(d[2].headers["authorization"], "Bearer hook-secret");
    assert_eq!(d[2].headers["content-type"], "application/json");
    w.shutdown(WAIT).await;
    assert_eq!((w.sent(), w.dropped(), w.failed_posts()), (2, 0, 2));
    assert_eq!(hook.events().len(), 2, "nothing sent twice");
}

#[tokio::test]
async fn a_refusal_is_not_retried_and_a_dead_receiver_costs_nothing_to_callers() {
    let hook = MockWebhook::start().await;
    hook.script([400]);
    let w = Webhook::start(&quick(&hook.url()));
    WebhookSink::new(std::slice::from_ref(&w)).record(&record("x"));
    assert_eq!(hook.wait_deliveries(1, WAIT).await.len(), 1);
    w.shutdown(WAIT).await;
    assert_eq!(hook.deliveries().len(), 1, "a 400 is final");
    assert_eq!((w.sent(), w.dropped()), (0, 1));

    // Nothing listens on this port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut s = quick(&format!("http://127.0.0.1:{port}/hook"));
    s.max_retries = 2;
    s.batch_size = 4;
    let w = Webhook::start(&s);
    let sink = WebhookSink::new(std::slice::from_ref(&w));
    let t = Instant::now();
    for i in 0..100 {
        sink.record(&record(&i.to_string()));
    }
    // Recording never waits on the network.
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    let deadline = Instant::now() + WAIT;
    while w.dropped() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(w.dropped() >= 4, "a failed batch is dropped and counted");
    w.shutdown(WAIT).await;
    assert_eq!((w.sent(), w.dropped()), (0, 100));
    assert_eq!(w.queued(), 0);
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest() {
    let mut s = WebhookSettings::to_url("http://127.0.0.1:9/hook").unwrap();
    s.max_queue = 3;
    s.batch_size = 10;
    // Never started: nothing drains the queue.
    let e = deliver::Exporter::new(s);
    for i in 0..5 {
        e.push(Arc::new(Event::from_record(&record(&i.to_string()), None)));
    }
    assert_eq!(e.queued(), 3);
    assert_eq!(e.counters.dropped.load(Ordering::Relaxed), 2);
    let hook = MockWebhook::start().await;
    let mut s = quick(&hook.url());
    s.max_queue = 3;
    let w = Webhook::start(&s);
    // Push synchronously (no await between): the task cannot drain yet.
    let sink = WebhookSink::new(std::slice::from_ref(&w));
    for i in 0..5 {
        sink.record(&record(&i.to_string()));
    }
    w.shutdown(WAIT).await;
    let ids: Vec<String> = hook
        .events()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["2", "3", "4"]);
    assert_eq!((w.sent(), w.dropped()), (3, 2));
}

#[tokio::test]
async fn each_log_format_and_the_event_filter() {
    let hook = MockWebhook::start().await;
    let mut nd = quick(&hook.url());
    nd.log_format = LogFormat::Ndjson;
    nd.failure = false;
    let mut single = quick(&format!("{}/single", hook.url()));
    single.log_format = LogFormat::Single;
    single.success = false;
    let hooks = [Webhook::start(&nd), Webhook::start(&single)];
    let sink = WebhookSink::new(&hooks);
    sink.record(&record("ok-1"));
    sink.record(&failed("bad-1"));
    sink.record(&record("ok-2"));
    sink.record(&failed("bad-2"));
    shutdown_all(&hooks, WAIT).await;
    let d = hook.deliveries();
    let nd_posts: Vec<_> = d.iter().filter(|d| d.path == "/hook").collect();
    assert_eq!(nd_posts.len(), 1, "one POST for the batch");
    let text = String::from_utf8(nd_posts[0].body.to_vec()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (&lines[0]["id"], &lines[1]["id"]),
        (&json!("ok-1"), &json!("ok-2"))
    );
    assert!(lines.iter().all(|l| l["status"] == "success"));
    let singles: Vec<_> = d.iter().filter(|d| d.path == "/hook/single").collect();
    assert_eq!(singles.len(), 2, "one POST per event");
    let mut ids: Vec<Value> = singles
        .iter()
        .map(|d| serde_json::from_slice::<Value>(&d.body).unwrap())
        .inspect(|v| assert!(v.is_object(), "a single event, not an array"))
        .map(|v| v["id"].clone())
        .collect();
    ids.sort_by_key(|v| v.to_string());
    assert_eq!(ids, [json!("bad-1"), json!("bad-2")]);
}

#[tokio::test]
async fn shutdown_sends_what_is_queued() {
    let hook = MockWebhook::start().await;
    let mut s = quick(&hook.url());
    s.flush_interval = Duration::from_secs(3600);
    s.batch_size = 100;
    let w = Webhook::start(&s);
    let sink = WebhookSink::new(std::slice::from_ref(&w));
    for i in 0..3 {
        sink.record(&record(&i.to_string()));
    }
    tokio::task::yield_now().await;
    assert!(hook.deliveries().is_empty(), "waits for the interval");
    let t = Instant::now();
    w.shutdown(WAIT).await;
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(hook.events().len(), 3);
    assert_eq!(hook.deliveries().len(), 1);
}
