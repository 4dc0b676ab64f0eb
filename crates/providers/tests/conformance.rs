//! Provider conformance: the same cases for every provider kind.
//!
//! Every row of the table below is one adapter with a fixture folder,
//! `tests/fixtures/<dir>/`, and runs the same four checks:
//!
//! * **requests** — each shared OpenAI request in `fixtures/requests/<case>.json`
//!   is translated and compared, URL and JSON body, with
//!   `<dir>/<case>.upstream.json` (`{"url": …, "body": …}`, or
//!   `{"error": "BadRequest" | "Unsupported"}` where the provider must refuse).
//! * **responses** — `<dir>/responses.json` holds one upstream answer per
//!   response case and the OpenAI answer expected from it: content, tool calls
//!   (name + arguments as JSON), finish_reason and usage.
//! * **streams** — `<dir>/<case>.stream.txt` (SSE bytes as the upstream sends
//!   them) or `<dir>/<case>.stream.json` (Bedrock: `[{event_type, payload}]`,
//!   encoded here into AWS event-stream frames with real CRC32s) is fed through
//!   `stream_decoder()` + `chat_stream()` whole and split every 1, 7 and 64
//!   bytes; `<dir>/streams.json` says what must come out. `unknown_event.*` is
//!   inserted after the first event and must change nothing; `error.stream.*`
//!   must end in `TranslateError::Upstream` with the expected status.
//! * **errors** — `<dir>/errors.json`: error bodies through `parse_error`,
//!   checking status, message, type, label and `UpstreamError::class()`.
//!
//! A new provider is one `Row` constant, one line in `conformance!` and one
//! fixture folder. A row whose folder is missing is skipped with a note; a row
//! whose adapter is not ready yet can carry `#[ignore = "adapter in progress"]`
//! in `conformance!` (the attribute applies to its four tests).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferrolite_providers::{
    adapter, AuthScheme, BuildOptions, ProviderKind, Target, TranslateError, UpstreamError,
};
use ferrolite_types::openai::{ChatChunk, ChatRequest};
use ferrolite_types::Usage;
use serde_json::Value;

// ------------------------------------------------------------------- cases

/// The OpenAI requests every provider translates (`fixtures/requests/`).
const REQUEST_CASES: &[&str] = &[
    "simple",
    "system",
    "multi_turn",
    "image",
    "tools",
    "tool_results",
    "json_schema",
    "reasoning",
    "stream",
];

/// The upstream answers every provider parses (keys of `responses.json`).
const RESPONSE_CASES: &[&str] = &["text", "tool_calls", "json", "length"];

/// The successful streams every provider translates (besides `error`).
const STREAM_CASES: &[&str] = &["text", "tool_calls"];

/// The error answers every provider parses (keys of `errors.json`).
const ERROR_CASES: &[&str] = &["context_window", "credentials", "rate_limit"];

/// Byte boundaries the streams are cut at (`usize::MAX`: in one piece).
const SPLITS: &[usize] = &[usize::MAX, 1, 7, 64];

// ------------------------------------------------------------------- table

/// How a provider frames its streams.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Server-sent events: fixtures are the bytes as sent (`*.stream.txt`).
    Sse,
    /// AWS event-stream frames: fixtures list the events (`*.stream.json`).
    AwsEventStream,
}

struct Row {
    /// The fixture folder under `tests/fixtures/`.
    dir: &'static str,
    kind: ProviderKind,
    target: fn() -> Target,
    framing: Framing,
    /// Whether the stream has an explicit end (`[DONE]`, `message_stop`),
    /// after which the translator returns `Ok(None)`.
    end_marker: bool,
    /// Error cases this provider has besides [`ERROR_CASES`].
    extra_errors: &'static [&'static str],
    /// Blanks the fields of a serialized chunk that differ from run to run
    /// (clock, generated ids), so runs can be compared.
    normalise: fn(&mut Value),
}

fn target(
    provider: &str,
    kind: ProviderKind,
    model: &str,
    api_base: &str,
    auth: AuthScheme,
) -> Target {
    Target {
        provider: provider.to_owned(),
        kind,
        model: model.to_owned(),
        api_base: api_base.to_owned(),
        api_version: None,
        auth,
        stream_usage: false,
        headers: Vec::new(),
    }
}

fn header_auth(name: &'static str) -> AuthScheme {
    AuthScheme::Header(http::HeaderName::from_static(name))
}

const OPENAI_COMPAT: Row = Row {
    dir: "openai_compat",
    kind: ProviderKind::OpenAiCompat,
    target: || Target {
        stream_usage: true,
        ..target(
            "openai",
            ProviderKind::OpenAiCompat,
            "gpt-4o-mini",
            "https://api.openai.com/v1",
            AuthScheme::Bearer,
        )
    },
    framing: Framing::Sse,
    end_marker: true,
    extra_errors: &[],
    normalise: normalise_clock,
};

const AZURE: Row = Row {
    dir: "azure",
    kind: ProviderKind::Azure,
    target: || Target {
        stream_usage: true,
        api_version: Some("2024-10-21".to_owned()),
        ..target(
            "azure",
            ProviderKind::Azure,
            "gpt-4o-deploy",
            "https://ferrolite-test.openai.azure.com",
            header_auth("api-key"),
        )
    },
    framing: Framing::Sse,
    end_marker: true,
    extra_errors: &[],
    normalise: normalise_clock,
};

const ANTHROPIC: Row = Row {
    dir: "anthropic",
    kind: ProviderKind::Anthropic,
    target: || {
        target(
            "anthropic",
            ProviderKind::Anthropic,
            "claude-sonnet-4-5-20250929",
            "https://api.anthropic.com",
            header_auth("x-api-key"),
        )
    },
    framing: Framing::Sse,
    end_marker: true,
    extra_errors: &["overloaded"],
    normalise: normalise_clock,
};

const GEMINI: Row = Row {
    dir: "gemini",
    kind: ProviderKind::Gemini,
    target: || {
        target(
            "gemini",
            ProviderKind::Gemini,
            "gemini-2.5-flash",
            "https://generativelanguage.googleapis.com",
            header_auth("x-goog-api-key"),
        )
    },
    framing: Framing::Sse,
    end_marker: false,
    extra_errors: &[],
    normalise: normalise_generated_ids,
};

const VERTEX_GEMINI: Row = Row {
    dir: "vertex_gemini",
    kind: ProviderKind::VertexGemini,
    target: || {
        target(
            "vertex_ai",
            ProviderKind::VertexGemini,
            "gemini-2.5-flash",
            "https://us-central1-aiplatform.googleapis.com/v1/projects/ferrolite-test/locations/us-central1",
            AuthScheme::GcpOAuth,
        )
    },
    framing: Framing::Sse,
    end_marker: false,
    extra_errors: &[],
    normalise: normalise_generated_ids,
};

const VERTEX_ANTHROPIC: Row = Row {
    dir: "vertex_anthropic",
    kind: ProviderKind::VertexAnthropic,
    target: || {
        target(
            "vertex_ai",
            ProviderKind::VertexAnthropic,
            "claude-sonnet-4-5@20250929",
            "https://us-east5-aiplatform.googleapis.com/v1/projects/ferrolite-test/locations/us-east5",
            AuthScheme::GcpOAuth,
        )
    },
    framing: Framing::Sse,
    end_marker: true,
    extra_errors: &["overloaded"],
    normalise: normalise_clock,
};

const BEDROCK: Row = Row {
    dir: "bedrock",
    kind: ProviderKind::Bedrock,
    target: || {
        target(
            "bedrock",
            ProviderKind::Bedrock,
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            AuthScheme::AwsSigV4 {
                region: "us-east-1".to_owned(),
                service: "bedrock",
            },
        )
    },
    framing: Framing::AwsEventStream,
    end_marker: false,
    extra_errors: &[],
    normalise: normalise_generated_ids,
};

/// Every row, for the checks that look at the table as a whole.
const ROWS: &[&Row] = &[
    &OPENAI_COMPAT,
    &AZURE,
    &ANTHROPIC,
    &GEMINI,
    &VERTEX_GEMINI,
    &VERTEX_ANTHROPIC,
    &BEDROCK,
];

/// One test module per row: `<row>::requests`, `::responses`, `::streams`,
/// `::errors`. Attributes before a row apply to all four.
macro_rules! conformance {
    ($($(#[$attr:meta])* $module:ident => $row:expr;)+) => {$(
        mod $module {
            use super::*;

            $(#[$attr])*
            #[test]
            fn requests() {
                run_check(&$row, "requests", check_requests);
            }

            $(#[$attr])*
            #[test]
            fn responses() {
                run_check(&$row, "responses", check_responses);
            }

            $(#[$attr])*
            #[test]
            fn streams() {
                run_check(&$row, "streams", check_streams);
            }

            $(#[$attr])*
            #[test]
            fn errors() {
                run_check(&$row, "errors", check_errors);
            }
        }
    )+};
}

conformance! {
    openai_compat => OPENAI_COMPAT;
    azure => AZURE;
    anthropic => ANTHROPIC;
    gemini => GEMINI;
    vertex_gemini => VERTEX_GEMINI;
    vertex_anthropic => VERTEX_ANTHROPIC;
    bedrock => BEDROCK;
}

// -------------------------------------------------------------- normalise

/// Chunks carry the translator's clock (`created`).
fn normalise_clock(v: &mut Value) {
    if let Some(created) = v.get_mut("created") {
        *created = Value::from(0);
    }
}

/// The clock, plus ids the adapter makes up: `chatcmpl-<random>` chunk ids
/// and `call_<random>` tool-call ids (a `__thought__<signature>` suffix is
/// kept: it comes from the upstream).
fn normalise_generated_ids(v: &mut Value) {
    normalise_clock(v);
    if let Some(Value::String(id)) = v.get_mut("id") {
        if id.starts_with("chatcmpl-") {
            *id = "chatcmpl-<generated>".to_owned();
        }
    }
    let choices = v.get_mut("choices").and_then(Value::as_array_mut);
    for choice in choices.into_iter().flatten() {
        let calls = choice
            .pointer_mut("/delta/tool_calls")
            .and_then(Value::as_array_mut);
        for call in calls.into_iter().flatten() {
            if let Some(Value::String(id)) = call.get_mut("id") {
                if let Some(rest) = id.strip_prefix("call_") {
                    let generated: String =
                        rest.chars().take_while(char::is_ascii_hexdigit).collect();
                    if generated.len() >= 16 {
                        *id = format!("call_<generated>{}", &rest[generated.len()..]);
                    }
                }
            }
        }
    }
}

// --------------------------------------------------------------- harness

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&read(path))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Failures are collected, so one run reports every broken case.
type Failures = Vec<String>;

fn run_check(row: &Row, what: &str, check: fn(&Row, &Path, &mut Failures)) {
    let dir = fixtures().join(row.dir);
    if !dir.is_dir() {
        eprintln!(
            "skipping {what} for {}: no fixture folder {}",
            row.dir,
            dir.display()
        );
        return;
    }
    let mut failures = Vec::new();
    check(row, &dir, &mut failures);
    assert!(
        failures.is_empty(),
        "{} {what}: {} failure(s)\n\n{}",
        row.dir,
        failures.len(),
        failures.join("\n\n")
    );
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// `Err` as a short name, for fixtures that expect a refusal.
fn error_name(e: &TranslateError) -> &'static str {
    match e {
        TranslateError::InvalidResponse(_) => "InvalidResponse",
        TranslateError::Unsupported(_) => "Unsupported",
        TranslateError::Upstream(_) => "Upstream",
        TranslateError::BadRequest(_) => "BadRequest",
    }
}

// ---------------------------------------------------------------- requests

fn check_requests(row: &Row, dir: &Path, failures: &mut Failures) {
    let provider = adapter(row.kind);
    let target = (row.target)();
    let opts = BuildOptions {
        defaults: None,
        stream_usage: true,
    };
    for case in REQUEST_CASES {
        let request_path = fixtures().join("requests").join(format!("{case}.json"));
        let req: ChatRequest = serde_json::from_value(read_json(&request_path))
            .unwrap_or_else(|e| panic!("{}: {e}", request_path.display()));
        let fixture_path = dir.join(format!("{case}.upstream.json"));
        if !fixture_path.is_file() {
            failures.push(format!(
                "[{case}] missing fixture {}",
                fixture_path.display()
            ));
            continue;
        }
        let want = read_json(&fixture_path);
        let got = provider.chat_request(&req, &target, opts);
        match (want.get("error").and_then(Value::as_str), got) {
            (Some(kind), Err(e)) if kind == error_name(&e) => {}
            (Some(kind), Err(e)) => failures.push(format!("[{case}] want {kind}, got error {e:?}")),
            (Some(kind), Ok(up)) => {
                failures.push(format!("[{case}] want {kind}, got a request to {}", up.url))
            }
            (None, Err(e)) => failures.push(format!("[{case}] translation failed: {e:?}")),
            (None, Ok(up)) => {
                let want_url = want["url"].as_str().unwrap_or_default();
                if up.url != want_url {
                    failures.push(format!(
                        "[{case}] url\n  want {want_url}\n  got  {}",
                        up.url
                    ));
                }
                if up.auth != target.auth {
                    failures.push(format!(
                        "[{case}] auth {:?}, want {:?}",
                        up.auth, target.auth
                    ));
                }
                let json_type = up
                    .headers
                    .iter()
                    .any(|(k, v)| k == http::header::CONTENT_TYPE && v == "application/json");
                if !json_type {
                    failures.push(format!("[{case}] no content-type: application/json header"));
                }
                match serde_json::from_slice::<Value>(&up.body) {
                    Ok(body) if body == want["body"] => {}
                    Ok(body) => failures.push(format!(
                        "[{case}] body\n--- want\n{}\n--- got\n{}",
                        pretty(&want["body"]),
                        pretty(&body)
                    )),
                    Err(e) => failures.push(format!("[{case}] body is not JSON: {e}")),
                }
            }
        }
    }
}

// --------------------------------------------------------------- responses

/// A tool call as the expectations state it.
#[derive(Debug, PartialEq)]
struct Call {
    name: String,
    arguments: Value,
}

fn expected_calls(expect: &Value) -> Vec<Call> {
    expect["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Call {
            name: c["name"].as_str().unwrap_or_default().to_owned(),
            arguments: c["arguments"].clone(),
        })
        .collect()
}

fn usage_triple(u: &Usage) -> (u64, u64, u64) {
    (u.prompt_tokens, u.completion_tokens, u.total_tokens)
}

fn expected_usage(expect: &Value) -> (u64, u64, u64) {
    let n = |k: &str| expect["usage"][k].as_u64().unwrap_or(u64::MAX);
    (
        n("prompt_tokens"),
        n("completion_tokens"),
        n("total_tokens"),
    )
}

/// `content` must equal the expected string exactly; `content_json` must
/// parse to the expected value (JSON answers may be pretty-printed upstream).
fn check_content(case: &str, got: Option<&str>, expect: &Value, failures: &mut Failures) {
    if let Some(want) = expect.get("content_json") {
        match got.map(serde_json::from_str::<Value>) {
            Some(Ok(v)) if &v == want => {}
            _ => failures.push(format!("[{case}] content: want JSON {want}, got {got:?}")),
        }
        return;
    }
    let want = expect["content"].as_str();
    if got != want {
        failures.push(format!("[{case}] content: want {want:?}, got {got:?}"));
    }
}

fn check_responses(row: &Row, dir: &Path, failures: &mut Failures) {
    let provider = adapter(row.kind);
    let target = (row.target)();
    let all = read_json(&dir.join("responses.json"));
    for case in RESPONSE_CASES {
        let Some(fixture) = all.get(*case) else {
            failures.push(format!("[{case}] missing from responses.json"));
            continue;
        };
        let expect = &fixture["expect"];
        let body = serde_json::to_vec(&fixture["upstream"]).unwrap();
        let resp = match provider.parse_chat_response(&body, &target) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("[{case}] parse failed: {e:?}"));
                continue;
            }
        };
        if resp.choices.len() != 1 {
            failures.push(format!("[{case}] {} choices, want 1", resp.choices.len()));
            continue;
        }
        let choice = &resp.choices[0];
        let msg = &choice.message;
        if msg.role != "assistant" {
            failures.push(format!("[{case}] role {:?}", msg.role));
        }
        let text = msg.content.as_ref().map(|c| c.text());
        check_content(case, text.as_deref(), expect, failures);

        let mut calls = Vec::new();
        for call in msg.tool_calls.iter().flatten() {
            if call.id.as_deref().is_none_or(str::is_empty) {
                failures.push(format!("[{case}] tool call without an id: {call:?}"));
            }
            let f = call.function.as_ref();
            let args = f.and_then(|f| f.arguments.as_deref()).unwrap_or_default();
            calls.push(Call {
                name: f.and_then(|f| f.name.clone()).unwrap_or_default(),
                arguments: serde_json::from_str(args)
                    .unwrap_or_else(|e| Value::String(format!("<invalid JSON {args:?}: {e}>"))),
            });
        }
        let want_calls = expected_calls(expect);
        if calls != want_calls {
            failures.push(format!(
                "[{case}] tool calls\n  want {want_calls:?}\n  got  {calls:?}"
            ));
        }
        let want_finish = expect["finish_reason"].as_str();
        if choice.finish_reason.as_deref() != want_finish {
            failures.push(format!(
                "[{case}] finish_reason: want {want_finish:?}, got {:?}",
                choice.finish_reason
            ));
        }
        let want_usage = expected_usage(expect);
        match &resp.usage {
            Some(u) if usage_triple(u) == want_usage => {}
            other => failures.push(format!(
                "[{case}] usage (prompt, completion, total): want {want_usage:?}, got {:?}",
                other.as_ref().map(usage_triple)
            )),
        }
    }
}

// ----------------------------------------------------------------- streams

/// A stream fixture as separate events (SSE events with their blank line,
/// or event-stream frames), so that more can be inserted between them.
fn stream_events(row: &Row, dir: &Path, name: &str) -> Option<Vec<Vec<u8>>> {
    match row.framing {
        Framing::Sse => {
            let path = dir.join(format!("{name}.txt"));
            path.is_file().then(|| split_sse(&read(&path)))
        }
        Framing::AwsEventStream => {
            let path = dir.join(format!("{name}.json"));
            path.is_file()
                .then(|| event_stream::frames(&read_json(&path)))
        }
    }
}

/// Cut SSE bytes after every blank line (`\n\n` or `\r\n\r\n`).
fn split_sse(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let rest = &bytes[i..];
        let sep = if rest.starts_with(b"\r\n\r\n") {
            4
        } else if rest.starts_with(b"\n\n") {
            2
        } else {
            0
        };
        if sep == 0 {
            i += 1;
        } else {
            i += sep;
            out.push(bytes[start..i].to_vec());
            start = i;
        }
    }
    if start < bytes.len() {
        out.push(bytes[start..].to_vec());
    }
    out
}

/// What one pass over a stream produced.
struct Run {
    chunks: Vec<ChatChunk>,
    /// `translator.usage()` at the end.
    usage: Option<Usage>,
    /// The translator returned `Ok(None)`.
    ended: bool,
    /// The stream failed with `TranslateError::Upstream`.
    upstream_error: Option<UpstreamError>,
}

impl Run {
    fn normalised(&self, row: &Row) -> Vec<Value> {
        self.chunks
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap();
                (row.normalise)(&mut v);
                v
            })
            .collect()
    }
}

/// Feed `bytes`, `split` bytes at a time, through a fresh decoder and
/// translator. Errors other than an upstream error are returned as text.
fn run_stream(row: &Row, bytes: &[u8], split: usize) -> Result<Run, String> {
    let provider = adapter(row.kind);
    let target = (row.target)();
    let mut decoder = provider.stream_decoder();
    let mut translator = provider.chat_stream(&target);
    let mut run = Run {
        chunks: Vec::new(),
        usage: None,
        ended: false,
        upstream_error: None,
    };
    let mut events = Vec::new();
    let mut pieces = bytes.chunks(split.min(bytes.len().max(1)));
    let mut finished = false;
    'feed: loop {
        match pieces.next() {
            Some(piece) => decoder
                .feed(piece, &mut events)
                .map_err(|e| format!("decoder failed (split {split}): {e:?}"))?,
            None => {
                decoder
                    .finish(&mut events)
                    .map_err(|e| format!("decoder finish failed (split {split}): {e:?}"))?;
                finished = true;
            }
        }
        for ev in events.drain(..) {
            match translator.on_event(&ev) {
                Ok(Some(chunks)) => run.chunks.extend(chunks),
                Ok(None) => {
                    run.ended = true;
                    break 'feed;
                }
                Err(TranslateError::Upstream(e)) => {
                    run.upstream_error = Some(*e);
                    break 'feed;
                }
                Err(e) => {
                    return Err(format!(
                        "translator failed on {ev:?} (split {split}): {e:?}"
                    ))
                }
            }
        }
        if finished {
            break;
        }
    }
    run.usage = translator.usage().cloned();
    Ok(run)
}

/// Runs the stream at every split; reports any split whose chunks differ
/// from the unsplit run, and returns the unsplit run.
fn run_all_splits(row: &Row, case: &str, bytes: &[u8], failures: &mut Failures) -> Option<Run> {
    let mut first: Option<(Run, Vec<Value>)> = None;
    for &split in SPLITS {
        let run = match run_stream(row, bytes, split) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("[{case}] {e}"));
                return None;
            }
        };
        let chunks = run.normalised(row);
        match &first {
            None => first = Some((run, chunks)),
            Some((base, base_chunks)) => {
                if &chunks != base_chunks {
                    failures.push(format!(
                        "[{case}] split every {split} bytes changes the chunks\n{}",
                        first_difference(base_chunks, &chunks)
                    ));
                }
                let (a, b) = (&base.upstream_error, &run.upstream_error);
                if a.as_ref().map(|e| (e.status, &e.message))
                    != b.as_ref().map(|e| (e.status, &e.message))
                {
                    failures.push(format!(
                        "[{case}] split every {split} bytes changes the error: {a:?} vs {b:?}"
                    ));
                }
                if base.usage != run.usage || base.ended != run.ended {
                    failures.push(format!(
                        "[{case}] split every {split} bytes changes usage or end: {:?}/{} vs {:?}/{}",
                        base.usage, base.ended, run.usage, run.ended
                    ));
                }
            }
        }
    }
    first.map(|(run, _)| run)
}

fn first_difference(a: &[Value], b: &[Value]) -> String {
    for i in 0..a.len().max(b.len()) {
        if a.get(i) != b.get(i) {
            return format!(
                "  chunk {i}\n  whole: {}\n  split: {}",
                a.get(i).map(Value::to_string).unwrap_or_default(),
                b.get(i).map(Value::to_string).unwrap_or_default()
            );
        }
    }
    String::new()
}

/// A tool call put together from its stream fragments.
#[derive(Default)]
struct Assembled {
    id: Option<String>,
    name: String,
    arguments: String,
}

/// Checks one successful stream against its expectations.
fn check_stream_output(row: &Row, case: &str, run: &Run, expect: &Value, failures: &mut Failures) {
    if let Some(e) = &run.upstream_error {
        failures.push(format!("[{case}] unexpected upstream error {e:?}"));
        return;
    }
    if row.end_marker && !run.ended {
        failures.push(format!("[{case}] the end marker did not end the stream"));
    }
    let with_choices: Vec<&ChatChunk> = run
        .chunks
        .iter()
        .filter(|c| !c.choices.is_empty())
        .collect();
    match with_choices.first() {
        Some(c) if c.choices[0].delta.role.as_deref() == Some("assistant") => {}
        Some(c) => failures.push(format!(
            "[{case}] first chunk has no role \"assistant\": {}",
            serde_json::to_string(c).unwrap_or_default()
        )),
        None => failures.push(format!("[{case}] no chunk with choices")),
    }

    let mut content = String::new();
    let mut finishes = Vec::new();
    let mut calls: BTreeMap<u32, Assembled> = BTreeMap::new();
    for choice in with_choices.iter().flat_map(|c| &c.choices) {
        if choice.index != 0 {
            failures.push(format!("[{case}] choice index {}", choice.index));
        }
        content.push_str(choice.delta.content.as_deref().unwrap_or_default());
        finishes.extend(choice.finish_reason.clone());
        for tc in choice.delta.tool_calls.iter().flatten() {
            let slot = calls.entry(tc.index).or_default();
            if let Some(id) = tc.call.id.as_deref().filter(|id| !id.is_empty()) {
                match &slot.id {
                    Some(prev) if prev != id => failures.push(format!(
                        "[{case}] tool-call index {} carries two ids: {prev} and {id}",
                        tc.index
                    )),
                    _ => slot.id = Some(id.to_owned()),
                }
            }
            if let Some(f) = &tc.call.function {
                if let Some(name) = f.name.as_deref().filter(|n| !n.is_empty()) {
                    if !slot.name.is_empty() && slot.name != name {
                        failures.push(format!(
                            "[{case}] tool-call index {} renamed {} -> {name}",
                            tc.index, slot.name
                        ));
                    }
                    slot.name = name.to_owned();
                }
                slot.arguments
                    .push_str(f.arguments.as_deref().unwrap_or_default());
            }
        }
    }

    let want_content = expect["content"].as_str().unwrap_or_default();
    if content != want_content {
        failures.push(format!(
            "[{case}] joined content: want {want_content:?}, got {content:?}"
        ));
    }

    let indexes: Vec<u32> = calls.keys().copied().collect();
    let want_indexes: Vec<u32> = (0..u32::try_from(calls.len()).unwrap()).collect();
    if indexes != want_indexes {
        failures.push(format!(
            "[{case}] tool-call indexes {indexes:?}, want {want_indexes:?}"
        ));
    }
    let mut ids: Vec<&str> = calls.values().filter_map(|c| c.id.as_deref()).collect();
    if ids.len() != calls.len() {
        failures.push(format!("[{case}] a streamed tool call has no id"));
    }
    let with_id = ids.len();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != with_id {
        failures.push(format!("[{case}] two streamed tool calls share an id"));
    }
    let got_calls: Vec<Call> = calls
        .values()
        .map(|c| Call {
            name: c.name.clone(),
            arguments: serde_json::from_str(&c.arguments).unwrap_or_else(|e| {
                Value::String(format!("<invalid JSON {:?}: {e}>", c.arguments))
            }),
        })
        .collect();
    let want_calls = expected_calls(expect);
    if got_calls != want_calls {
        failures.push(format!(
            "[{case}] tool calls\n  want {want_calls:?}\n  got  {got_calls:?}"
        ));
    }

    let want_finish = expect["finish_reason"].as_str().unwrap_or_default();
    if finishes != [want_finish] {
        failures.push(format!(
            "[{case}] finish_reason: want exactly [{want_finish:?}], got {finishes:?}"
        ));
    }

    // Usage: from the translator, from a usage chunk, or both — but at
    // least one, and every one right.
    let want_usage = expected_usage(expect);
    let chunk_usage = run.chunks.iter().rev().find_map(|c| c.usage.as_ref());
    if run.usage.is_none() && chunk_usage.is_none() {
        failures.push(format!(
            "[{case}] no usage: neither usage() nor a usage chunk"
        ));
    }
    for (source, u) in [
        ("usage()", run.usage.as_ref()),
        ("usage chunk", chunk_usage),
    ] {
        if let Some(u) = u {
            if usage_triple(u) != want_usage {
                failures.push(format!(
                    "[{case}] {source} (prompt, completion, total): want {want_usage:?}, got {:?}",
                    usage_triple(u)
                ));
            }
        }
    }
}

fn check_streams(row: &Row, dir: &Path, failures: &mut Failures) {
    let expectations = read_json(&dir.join("streams.json"));
    for case in STREAM_CASES {
        let Some(events) = stream_events(row, dir, &format!("{case}.stream")) else {
            failures.push(format!("[{case}] missing stream fixture"));
            continue;
        };
        let expect = &expectations[*case];
        let bytes = events.concat();
        let Some(run) = run_all_splits(row, case, &bytes, failures) else {
            continue;
        };
        check_stream_output(row, case, &run, expect, failures);

        // An event type the adapter does not know, after the first event,
        // changes nothing.
        if *case == "text" {
            let Some(extra) = stream_events(row, dir, "unknown_event") else {
                failures.push("[unknown_event] missing fixture".to_owned());
                continue;
            };
            let mut with_extra = events.clone();
            with_extra.splice(1..1, extra);
            let label = "text + unknown_event";
            if let Some(extra_run) = run_all_splits(row, label, &with_extra.concat(), failures) {
                let (a, b) = (run.normalised(row), extra_run.normalised(row));
                if a != b {
                    failures.push(format!(
                        "[{label}] the unknown event changed the chunks\n{}",
                        first_difference(&a, &b)
                    ));
                }
                check_stream_output(row, label, &extra_run, expect, failures);
            }
        }
    }

    // An error inside the stream surfaces as TranslateError::Upstream.
    let Some(events) = stream_events(row, dir, "error.stream") else {
        failures.push("[error] missing stream fixture".to_owned());
        return;
    };
    let expect = &expectations["error"];
    if let Some(run) = run_all_splits(row, "error", &events.concat(), failures) {
        let want = (
            expect["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok()),
            expect["message"].as_str(),
        );
        match &run.upstream_error {
            Some(e) if (Some(e.status), Some(e.message.as_str())) == want => {}
            Some(e) => failures.push(format!(
                "[error] want (status, message) {want:?}, got ({}, {:?})",
                e.status, e.message
            )),
            None => failures.push(format!(
                "[error] the stream ended without TranslateError::Upstream ({} chunks)",
                run.chunks.len()
            )),
        }
    }
}

// ------------------------------------------------------------------ errors

fn check_errors(row: &Row, dir: &Path, failures: &mut Failures) {
    let provider = adapter(row.kind);
    let target = (row.target)();
    let all = read_json(&dir.join("errors.json"));
    let label = all["provider_label"].as_str().unwrap_or_default();
    for case in ERROR_CASES.iter().chain(row.extra_errors) {
        let Some(fixture) = all["cases"].get(*case) else {
            failures.push(format!("[{case}] missing from errors.json"));
            continue;
        };
        let status = fixture["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap();
        let body = match &fixture["body"] {
            Value::String(raw) => raw.clone().into_bytes(),
            json => serde_json::to_vec(json).unwrap(),
        };
        let expect = &fixture["expect"];
        let e = provider.parse_error(status, &body, &target);
        if e.status != status {
            failures.push(format!("[{case}] status {}, want {status}", e.status));
        }
        let want_message = expect["message"].as_str().unwrap_or_default();
        if e.message != want_message {
            failures.push(format!(
                "[{case}] message\n  want {want_message:?}\n  got  {:?}",
                e.message
            ));
        }
        if let Some(kind) = expect.get("kind") {
            if e.kind.as_deref() != kind.as_str() {
                failures.push(format!("[{case}] kind: want {kind}, got {:?}", e.kind));
            }
        }
        if e.provider_label != label {
            failures.push(format!(
                "[{case}] provider_label: want {label:?}, got {:?}",
                e.provider_label
            ));
        }
        let want_class = expect["class"].as_str().unwrap_or_default();
        let class = format!("{:?}", e.class());
        if class != want_class {
            failures.push(format!(
                "[{case}] class: want {want_class}, got {class} ({e:?})"
            ));
        }
    }
}

// ------------------------------------------------------ the table itself

#[test]
fn every_fixture_folder_has_a_row_and_every_request_case_a_file() {
    let mut dirs: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "requests")
        .collect();
    dirs.sort();
    let mut rows: Vec<String> = ROWS.iter().map(|r| r.dir.to_owned()).collect();
    rows.sort();
    for dir in &dirs {
        assert!(rows.contains(dir), "fixtures/{dir} has no row in ROWS");
    }
    let mut requests: Vec<String> = std::fs::read_dir(fixtures().join("requests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    requests.sort();
    let mut want: Vec<String> = REQUEST_CASES.iter().map(|c| format!("{c}.json")).collect();
    want.sort();
    assert_eq!(
        requests, want,
        "fixtures/requests must hold exactly REQUEST_CASES"
    );
    // Each kind appears once.
    for (i, a) in ROWS.iter().enumerate() {
        for b in &ROWS[i + 1..] {
            assert_ne!(a.kind, b.kind, "{} and {} share a kind", a.dir, b.dir);
        }
    }
}

// ---------------------------------------------------------- event stream

/// AWS event-stream framing (`application/vnd.amazon.eventstream`), written
/// here from the format's specification so Bedrock stream fixtures can be
/// kept as readable JSON.
mod event_stream {
    use serde_json::Value;

    /// CRC-32 (IEEE 802.3, the one gzip uses), bit by bit.
    pub fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
        !crc
    }

    /// One frame: prelude (total length, headers length, prelude CRC),
    /// string headers (type 7), payload, message CRC.
    pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        for (name, value) in headers {
            h.push(u8::try_from(name.len()).unwrap());
            h.extend_from_slice(name.as_bytes());
            h.push(7);
            h.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
            h.extend_from_slice(value.as_bytes());
        }
        let total = u32::try_from(12 + h.len() + payload.len() + 4).unwrap();
        let mut out = Vec::with_capacity(total as usize);
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&u32::try_from(h.len()).unwrap().to_be_bytes());
        let prelude_crc = crc32(&out);
        out.extend_from_slice(&prelude_crc.to_be_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(payload);
        let message_crc = crc32(&out);
        out.extend_from_slice(&message_crc.to_be_bytes());
        out
    }

    /// `[{event_type, payload}]` or `[{exception_type, payload}]` → frames,
    /// with the headers Bedrock sends.
    pub fn frames(events: &Value) -> Vec<Vec<u8>> {
        events
            .as_array()
            .expect("an event-stream fixture is a JSON array")
            .iter()
            .map(|ev| {
                let payload = serde_json::to_vec(&ev["payload"]).unwrap();
                let content_type = (":content-type", "application/json");
                match (ev["event_type"].as_str(), ev["exception_type"].as_str()) {
                    (Some(t), None) => frame(
                        &[(":event-type", t), content_type, (":message-type", "event")],
                        &payload,
                    ),
                    (None, Some(t)) => frame(
                        &[
                            (":exception-type", t),
                            content_type,
                            (":message-type", "exception"),
                        ],
                        &payload,
                    ),
                    _ => panic!("an event needs exactly one of event_type / exception_type: {ev}"),
                }
            })
            .collect()
    }

    #[test]
    fn encoder_matches_reference_frames() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926, "the CRC-32 check value");
        // Reference frames from an independent encoder (hex.pm `event_stream`).
        assert_eq!(
            frame(&[], br#"{"foo": "bar"}"#),
            [
                &[0, 0, 0, 30, 0, 0, 0, 0, 186, 242, 246, 138][..],
                br#"{"foo": "bar"}"#,
                &[174, 114, 88, 228],
            ]
            .concat()
        );
        let with_header = frame(
            &[("content-type", "application/json")],
            br#"{"foo": "bar"}"#,
        );
        assert_eq!(
            with_header[..12],
            [0, 0, 0, 62, 0, 0, 0, 32, 64, 93, 249, 70]
        );
        assert_eq!(with_header[with_header.len() - 4..], [111, 162, 191, 59]);
    }
}
