//! Mid-stream fallback continuation: a stream that dies after its first
//! frames is continued on a fallback, which receives the partial answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestGateway;
use ferrolite_testkit::openai::chat_chunks;
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::{json, Value};

fn group(name: &str, base: &str) -> String {
    format!("  - model_name: {name}\n    litellm_params: {{model: openai/{name}-up, api_base: \"{base}\", api_key: k}}\n")
}

fn text_of(frames: &[String]) -> String {
    frames
        .iter()
        .filter(|f| *f != "[DONE]")
        .filter_map(|f| serde_json::from_str::<Value>(f).ok())
        .filter_map(|c| {
            c["choices"]
                .get(0)
                .and_then(|x| x["delta"]["content"].as_str().map(str::to_owned))
        })
        .collect()
}

fn cut_after(content: &str, n: usize) -> Reply {
    Reply::Sse {
        data: chat_chunks("x", content, false)[..n].to_vec(),
        done: false,
    }
}

async fn setup(continuation: bool) -> (MockOpenAi, MockOpenAi, TestGateway) {
    let primary = MockOpenAi::start().await;
    let backup = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\n  enable_mid_stream_fallback_continuation: {continuation}\n  fallbacks: [{{\"primary\": [\"backup\"]}}]\n",
        group("primary", &primary.base_url()),
        group("backup", &backup.base_url())
    );
    let gw = TestGateway::start(&yaml).await;
    (primary, backup, gw)
}

#[tokio::test]
async fn a_stream_cut_after_three_chunks_is_continued_on_the_fallback() {
    let (primary, backup, gw) = setup(true).await;
    // role chunk + "The " + "answer " — then the connection closes.
    primary.script([cut_after("The answer is long", 3)]);
    backup.script([Reply::Content("is forty-two.".into())]);
    let (s, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"primary","messages":[{"role":"user","content":"question?"}],"stream":true}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert!(
        !frames.iter().any(|f| f.contains("\"error\"")),
        "no error frame when the continuation succeeds: {frames:?}"
    );
    assert_eq!(text_of(&frames), "The answer is forty-two.");
    assert!(frames
        .iter()
        .filter(|f| *f != "[DONE]")
        .all(|f| serde_json::from_str::<Value>(f).unwrap()["model"] == "primary"));
    // The fallback saw the question, the partial answer and the request to go on.
    let sent = &backup.calls()[0].body;
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "{sent}");
    assert_eq!(msgs[0]["content"], "question?");
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["content"], "The answer ");
    assert_eq!(msgs[2]["role"], "user");
    assert!(msgs[2]["content"].as_str().unwrap().contains("Continue"));
    assert_eq!(sent["model"], "backup-up");
    assert_eq!(sent["stream"], true);
}

#[tokio::test]
async fn an_in_band_error_event_is_continued_too() {
    let (primary, backup, gw) = setup(true).await;
    let mut data = chat_chunks("x", "Partial ", false)[..2].to_vec();
    data.push(
        json!({"error": {"message": "server had an error", "type": "server_error"}}).to_string(),
    );
    primary.script([Reply::Sse { data, done: true }]);
    backup.script([Reply::Content("rest.".into())]);
    let (_, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"primary","messages":[],"stream":true}),
        )
        .await;
    assert_eq!(text_of(&frames), "Partial rest.");
    assert!(!frames.iter().any(|f| f.contains("server had an error")));
}

#[tokio::test]
async fn without_the_setting_the_stream_ends_with_an_error_frame() {
    let (primary, backup, gw) = setup(false).await;
    primary.script([cut_after("The answer is long", 3)]);
    let (_, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"primary","messages":[],"stream":true}),
        )
        .await;
    assert_eq!(text_of(&frames), "The answer ");
    let err: Value = serde_json::from_str(&frames[frames.len() - 2]).unwrap();
    assert!(err["error"]["message"].is_string(), "{frames:?}");
    assert_eq!(backup.call_count(), 0);
}

#[tokio::test]
async fn when_the_continuation_fails_the_original_error_frame_is_sent() {
    let (primary, backup, gw) = setup(true).await;
    primary.script([cut_after("The answer is long", 3)]);
    backup.script([Reply::error(500, "backup down")]);
    let (_, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"primary","messages":[],"stream":true}),
        )
        .await;
    assert_eq!(text_of(&frames), "The answer ");
    let err: Value = serde_json::from_str(&frames[frames.len() - 2]).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("closed the stream before it finished"),
        "{err}"
    );
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert_eq!(backup.call_count(), 1);
}

#[tokio::test]
async fn a_group_without_fallbacks_continues_on_another_deployment() {
    let a = MockOpenAi::start().await;
    let b = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\n  enable_mid_stream_fallback_continuation: true\n",
        group("m", &a.base_url()),
        group("m", &b.base_url())
    );
    let gw = TestGateway::start(&yaml).await;
    // Whichever deployment answers first is cut; the continuation goes to
    // the other one, whose first reply would be cut as well if it answered
    // first — so a continuation on the failed deployment would not end well.
    a.script([
        cut_after("One two three", 3),
        Reply::Content("three.".into()),
    ]);
    b.script([
        cut_after("One two three", 3),
        Reply::Content("three.".into()),
    ]);
    let (_, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"stream":true}),
        )
        .await;
    assert_eq!(
        (a.call_count(), b.call_count()),
        (1, 1),
        "the continuation avoided the deployment that failed"
    );
    assert!(text_of(&frames).starts_with("One two "), "{frames:?}");
}
