//! Every call produces exactly one record for the sinks (spend, metrics,
//! request log): JSON answers, streams, streams the client abandons, and
//! failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{one_model, sse_data, TestGateway};
use ferrolite_core::config::Env;
use ferrolite_core::meter::{CallRecord, CallSink, CallType};
use ferrolite_testkit::openai::chat_chunks;
use ferrolite_testkit::{MockOpenAi, Reply};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::Notify;

#[derive(Default)]
struct Collect {
    records: Mutex<Vec<CallRecord>>,
    added: Notify,
}

impl CallSink for Collect {
    fn record(&self, rec: &CallRecord) {
        self.records.lock().unwrap().push(rec.clone());
        self.added.notify_waiters();
    }
}

impl Collect {
    /// Wait until `n` records arrived (the stream's record is emitted when
    /// the relay is dropped, which may be just after the client read the end).
    async fn wait(&self, n: usize) -> Vec<CallRecord> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.added.notified();
            {
                let r = self.records.lock().unwrap();
                if r.len() >= n {
                    return r.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.records.lock().unwrap().clone();
            }
        }
    }
}

async fn gateway(base: &str) -> (TestGateway, Arc<Collect>) {
    let sink = Arc::new(Collect::default());
    let s = Arc::clone(&sink);
    let gw = TestGateway::start_with(
        &format!(
            "{}\ngeneral_settings:\n  master_key: {}\n",
            one_model("m", base),
            common::MASTER
        ),
        Env::isolated(Vec::<(String, String)>::new()),
        move |g| g.add_sink(s),
    )
    .await;
    (gw, sink)
}

#[tokio::test]
async fn a_json_answer_is_recorded_once_with_its_usage_and_deployment() {
    let up = MockOpenAi::start().await;
    let (gw, sink) = gateway(&up.base_url()).await;
    let (s, h, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],"user":"end-1","metadata":{"tags":["a","b"]}}),
        )
        .await;
    assert_eq!(s, 200);
    let recs = sink.wait(1).await;
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.call_type, CallType::Chat);
    assert_eq!(r.call_id, h["x-litellm-call-id"].to_str().unwrap());
    assert_eq!(r.requested_model, "m");
    assert_eq!(r.meta.model_group, "m");
    assert_eq!(r.meta.model_id, h["x-litellm-model-id"].to_str().unwrap());
    let u = r.usage.as_ref().expect("usage recorded");
    assert_eq!((u.prompt_tokens, u.completion_tokens), (9, 12));
    assert!(!r.usage_estimated);
    assert!(r.succeeded());
    assert!(!r.stream);
    assert_eq!(r.end_user.as_deref(), Some("end-1"));
    assert_eq!(r.tags, ["a", "b"]);
    assert!(r.principal.as_ref().is_some_and(|p| p.admin));
}

#[tokio::test]
async fn a_stream_is_recorded_when_it_ends_with_the_upstream_usage() {
    let up = MockOpenAi::start().await;
    let (gw, sink) = gateway(&up.base_url()).await;
    let (s, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"stream":true}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let recs = sink.wait(1).await;
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert!(r.stream);
    assert!(r.succeeded());
    assert_eq!(r.usage.as_ref().unwrap().total_tokens, 21);
    assert!(!r.usage_estimated);
    assert!(r.time_to_first_token.is_some());
    assert!(r.time_to_first_token.unwrap() <= r.latency);
}

#[tokio::test]
async fn an_abandoned_stream_is_billed_for_what_was_relayed() {
    let up = MockOpenAi::start().await;
    up.script([Reply::SseHang {
        data: chat_chunks("x", "twelve chars and more text", false)[..3].to_vec(),
    }]);
    let (gw, sink) = gateway(&up.base_url()).await;
    let resp = gw
        .post("/v1/chat/completions")
        .json(&json!({"model":"m","messages":[{"role":"user","content":"a prompt of forty characters, roughly.."}],"stream":true}))
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!sse_data(std::str::from_utf8(&first).unwrap()).is_empty());
    assert!(
        sink.records.lock().unwrap().is_empty(),
        "not before the end"
    );
    drop(body);
    let recs = sink.wait(1).await;
    assert_eq!(recs.len(), 1, "one record when the client leaves");
    let u = recs[0].usage.as_ref().expect("an estimate");
    assert!(recs[0].usage_estimated);
    assert!(u.prompt_tokens >= 9, "{u:?}");
    assert!(u.completion_tokens >= 1, "{u:?}");
}

#[tokio::test]
async fn a_failure_is_recorded_with_its_status() {
    let up = MockOpenAi::start().await;
    up.script([Reply::error(400, "bad thing")]);
    let (gw, sink) = gateway(&up.base_url()).await;
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 400);
    let recs = sink.wait(1).await;
    assert_eq!(recs.len(), 1);
    let e = recs[0].error.as_ref().expect("error recorded");
    assert_eq!(e.status, 400);
    assert!(e.message.contains("bad thing"), "{}", e.message);
    assert!(recs[0].usage.is_none());
}

#[tokio::test]
async fn an_unknown_model_is_recorded_as_a_failure() {
    let up = MockOpenAi::start().await;
    let (gw, sink) = gateway(&up.base_url()).await;
    let (s, _, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"nope","messages":[]}),
        )
        .await;
    assert_eq!(s, 400);
    let recs = sink.wait(1).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].requested_model, "nope");
    assert!(recs[0].error.is_some());
}
