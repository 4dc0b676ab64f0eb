use ferrolite_types::openai::{ChatChunk, ChatRequest, ChatResponse};
use ferrolite_types::sse::SseEvent;
use ferrolite_types::JsonMap;
use serde_json::{json, Value};

use super::*;
use crate::{AuthScheme, ProviderKind};

fn target(model: &str) -> Target {
    Target {
        provider: "gemini".to_owned(),
        kind: ProviderKind::Gemini,
        model: model.to_owned(),
        api_base: "https://generativelanguage.googleapis.com".to_owned(),
        api_version: None,
        auth: AuthScheme::Header(http::HeaderName::from_static("x-goog-api-key")),
        stream_usage: false,
        headers: vec![(
            http::HeaderName::from_static("x-team"),
            http::HeaderValue::from_static("ml"),
        )],
    }
}

fn chat(v: Value) -> ChatRequest {
    serde_json::from_value(v).unwrap()
}

fn upstream_body(req: &ChatRequest, model: &str, defaults: Option<&JsonMap>) -> Value {
    let up = Gemini
        .chat_request(
            req,
            &target(model),
            BuildOptions {
                defaults,
                stream_usage: true,
            },
        )
        .unwrap();
    serde_json::from_slice(&up.body).unwrap()
}

fn build_err(v: Value, model: &str) -> String {
    match Gemini.chat_request(&chat(v), &target(model), BuildOptions::default()) {
        Err(TranslateError::BadRequest(m)) => m,
        other => panic!("expected BadRequest, got {:?}", other.map(|u| u.url)),
    }
}

fn ev(data: Value) -> SseEvent {
    SseEvent {
        event: None,
        data: data.to_string(),
    }
}

fn is_generated_call_id(id: &str) -> bool {
    id.strip_prefix("call_")
        .is_some_and(|h| h.len() == 24 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

// ----------------------------------------------------------------- request

#[test]
fn urls_headers_and_auth() {
    let t = target("gemini-2.5-flash");
    let req = chat(json!({"model":"g","messages":[{"role":"user","content":"hi"}]}));
    let up = Gemini
        .chat_request(&req, &t, BuildOptions::default())
        .unwrap();
    assert_eq!(
        up.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        up.auth,
        AuthScheme::Header(http::HeaderName::from_static("x-goog-api-key"))
    );
    assert_eq!(up.headers[0].0, http::header::CONTENT_TYPE);
    assert_eq!(up.headers[0].1, "application/json");
    assert!(up.headers.iter().any(|(k, v)| k == "x-team" && v == "ml"));

    let s = chat(json!({"model":"g","stream":true,"messages":[{"role":"user","content":"hi"}]}));
    let up = Gemini
        .chat_request(&s, &t, BuildOptions::default())
        .unwrap();
    assert_eq!(
        up.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(
        body,
        json!({"contents":[{"role":"user","parts":[{"text":"hi"}]}]})
    );
}

#[test]
fn golden_request_covers_messages_tools_and_generation_config() {
    let req = chat(json!({
        "model": "group",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://ex.com/cat.webp?x=1"}},
                {"type": "image_url", "image_url": "https://ex.com/photo"},
                {"type": "image_url", "image_url": {"url": "gs://bucket/doc.pdf"}}
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1__thought__SIGX", "type": "function",
                 "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"found\":true}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
            {"role": "user", "content": "thanks"}
        ],
        "tools": [
            {"type": "function", "function": {
                "name": "lookup", "description": "Find", "strict": true,
                "parameters": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object", "additionalProperties": false,
                    "properties": {"q": {"type": "string"}}, "required": ["q"]
                }
            }},
            {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "temperature": 0.3, "top_p": 0.9, "max_tokens": 100, "stop": "END", "n": 1, "seed": 7,
        "presence_penalty": 0.1, "frequency_penalty": 0.2,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "object", "additionalProperties": false,
            "properties": {"a": {"type": ["integer", "null"]}}
        }}},
        "reasoning_effort": "low",
        "parallel_tool_calls": true,
        "user": "u1"
    }));
    let defaults: JsonMap =
        serde_json::from_value(json!({"temperature": 0.9, "top_k": 40})).unwrap();
    let body = upstream_body(&req, "gemini-2.5-flash", Some(&defaults));
    let expected = json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use metric."}]},
        "contents": [
            {"role": "user", "parts": [
                {"text": "Hi"},
                {"text": "What is this?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://ex.com/cat.webp?x=1"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://ex.com/photo"}},
                {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/doc.pdf"}}
            ]},
            {"role": "model", "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "lookup", "args": {"q": "cat"}}, "thoughtSignature": "SIGX"},
                {"functionCall": {"name": "now", "args": {}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "lookup", "response": {"found": true}}},
                {"functionResponse": {"name": "now", "response": {"content": "12:00"}}},
                {"text": "thanks"}
            ]}
        ],
        "tools": [{"functionDeclarations": [
            {"name": "lookup", "description": "Find", "parameters": {
                "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]
            }},
            {"name": "now"}
        ]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}},
        "generationConfig": {
            "temperature": 0.3, "topP": 0.9, "topK": 40, "maxOutputTokens": 100,
            "stopSequences": ["END"], "candidateCount": 1, "seed": 7,
            "presencePenalty": 0.1, "frequencyPenalty": 0.2,
            "responseMimeType": "application/json",
            "responseSchema": {"type": "object", "properties": {"a": {"type": "integer", "nullable": true}}},
            "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}
        }
    });
    assert_eq!(body, expected);
    assert!(!body.to_string().contains("__thought__"));
}

#[test]
fn tool_choice_and_response_format_variants() {
    let with = |extra: Value| {
        let mut v = json!({"model":"g","messages":[{"role":"user","content":"x"}]});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        upstream_body(&chat(v), "gemini-2.5-flash", None)
    };
    assert_eq!(
        with(json!({"tool_choice":"auto"}))["toolConfig"],
        json!({"functionCallingConfig":{"mode":"AUTO"}})
    );
    assert_eq!(
        with(json!({"tool_choice":"none"}))["toolConfig"],
        json!({"functionCallingConfig":{"mode":"NONE"}})
    );
    assert_eq!(
        with(json!({"tool_choice":"required"}))["toolConfig"],
        json!({"functionCallingConfig":{"mode":"ANY"}})
    );
    assert_eq!(
        with(json!({"response_format":{"type":"json_object"}}))["generationConfig"],
        json!({"responseMimeType":"application/json"})
    );
    assert_eq!(
        with(json!({"stop":["a","b"],"max_completion_tokens":9,"max_tokens":5}))
            ["generationConfig"],
        json!({"stopSequences":["a","b"],"maxOutputTokens":9})
    );
    assert_eq!(
        with(json!({"reasoning_effort":"none"}))["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget":0,"includeThoughts":false})
    );
    assert_eq!(
        with(json!({"thinking":{"type":"enabled","budget_tokens":2000}}))["generationConfig"]
            ["thinkingConfig"],
        json!({"thinkingBudget":2000,"includeThoughts":true})
    );
    assert_eq!(
        with(json!({"tools":[{"googleSearch":{}}]}))["tools"],
        json!([{"googleSearch":{}}])
    );
    let err = build_err(
        json!({"model":"g","messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"}),
        "gemini-2.5-flash",
    );
    assert!(err.contains("sometimes"), "{err}");
    let err = build_err(
        json!({"model":"g","messages":[{"role":"user","content":"x"}],"reasoning_effort":"extreme"}),
        "gemini-2.5-flash",
    );
    assert!(err.contains("extreme"), "{err}");
}

#[test]
fn gemini_3_thinking_levels_penalties_and_placeholder_signature() {
    let req = |extra: Value| {
        let mut v = json!({"model":"g","messages":[
            {"role":"user","content":"x"},
            {"role":"assistant","tool_calls":[
                {"id":"call_a","type":"function","function":{"name":"f","arguments":"{}"}},
                {"id":"call_b","type":"function","function":{"name":"f","arguments":"{}"}}
            ]},
            {"role":"tool","tool_call_id":"call_a","content":"1"},
            {"role":"tool","tool_call_id":"call_b","content":"2"}
        ], "presence_penalty": 0.5});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        chat(v)
    };
    let pro = upstream_body(&req(json!({})), "gemini-3-pro-preview", None);
    assert_eq!(
        pro["generationConfig"],
        json!({"thinkingConfig":{"thinkingLevel":"low"}})
    );
    assert_eq!(
        pro["contents"][1]["parts"],
        json!([
            {"functionCall":{"name":"f","args":{}},"thoughtSignature":"c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="},
            {"functionCall":{"name":"f","args":{}}}
        ])
    );
    let medium = upstream_body(
        &req(json!({"reasoning_effort":"medium"})),
        "gemini-3-pro-preview",
        None,
    );
    assert_eq!(
        medium["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel":"high","includeThoughts":true})
    );
    let flash = upstream_body(
        &req(json!({"reasoning_effort":"minimal"})),
        "gemini-3-flash-preview",
        None,
    );
    assert_eq!(
        flash["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel":"minimal","includeThoughts":true})
    );
    // Older models: no placeholder, penalties kept.
    let old = upstream_body(&req(json!({})), "gemini-2.5-pro", None);
    assert_eq!(
        old["contents"][1]["parts"][0],
        json!({"functionCall":{"name":"f","args":{}}})
    );
    assert_eq!(old["generationConfig"], json!({"presencePenalty":0.5}));
}

#[test]
fn tool_results_need_a_matching_call_and_bad_parts_are_rejected() {
    let err = build_err(
        json!({"model":"g","messages":[{"role":"tool","tool_call_id":"call_zz","content":"x"}]}),
        "gemini-2.5-flash",
    );
    assert!(err.contains("call_zz"), "{err}");
    let err = build_err(
        json!({"model":"g","messages":[{"role":"assistant","tool_calls":[
            {"id":"c","type":"function","function":{"name":"f","arguments":"{not json"}}]}]}),
        "gemini-2.5-flash",
    );
    assert!(err.contains("not valid JSON"), "{err}");
    let err = build_err(
        json!({"model":"g","messages":[{"role":"user","content":[
            {"type":"image_url","image_url":{"url":"data:image/png,rawbytes"}}]}]}),
        "gemini-2.5-flash",
    );
    assert!(err.contains("base64"), "{err}");
    let err = build_err(
        json!({"model":"g","messages":[{"role":"wizard","content":"x"}]}),
        "gemini-2.5-flash",
    );
    assert!(err.contains("wizard"), "{err}");
    // A legacy `function` message names itself.
    let body = upstream_body(
        &chat(json!({"model":"g","messages":[{"role":"function","name":"f","content":"[1,2]"}]})),
        "gemini-2.5-flash",
        None,
    );
    assert_eq!(
        body["contents"],
        json!([{"role":"user","parts":[{"functionResponse":{"name":"f","response":{"content":"[1,2]"}}}]}])
    );
}

#[test]
fn schemas_inline_refs_and_turn_null_unions_into_nullable() {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "title": "Unit"}},
        "properties": {
            "unit": {"$ref": "#/$defs/Unit", "description": "temperature unit"},
            "days": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "default": null},
            "kind": {"const": "daily"},
            "tags": {"type": "array", "items": {"type": "string", "additionalProperties": false}},
            "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]}
        },
        "required": ["unit", "ghost"],
        "additionalProperties": false
    });
    assert_eq!(
        request::gemini_schema(&schema),
        json!({
            "type": "object",
            "properties": {
                "unit": {"type": "string", "enum": ["c", "f"], "title": "Unit", "description": "temperature unit"},
                "days": {"type": "integer", "minimum": 1, "nullable": true},
                "kind": {"enum": ["daily"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]}
            },
            "required": ["unit"]
        })
    );
    assert_eq!(
        request::guess_mime("https://x.io/a.JPG#frag"),
        Some("image/jpeg")
    );
    assert_eq!(request::guess_mime("https://x.io/a"), None);
    assert_eq!(request::guess_mime("https://x.io/v1.2/a"), None);
}

// ---------------------------------------------------------------- response

fn parse(body: Value, model: &str) -> ChatResponse {
    Gemini
        .parse_chat_response(body.to_string().as_bytes(), &target(model))
        .unwrap()
}

#[test]
fn golden_response_with_thoughts_signed_tool_calls_and_usage() {
    let resp = parse(
        json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Thinking about weather", "thought": true},
                {"text": "Let me check. "},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG_A"},
                {"functionCall": {"name": "get_time", "args": {}}}
            ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 20,
                              "thoughtsTokenCount": 5, "totalTokenCount": 35,
                              "cachedContentTokenCount": 4},
            "modelVersion": "gemini-2.5-flash-001",
            "responseId": "resp-1"
        }),
        "gemini-2.5-flash",
    );
    assert!(resp.created > 1_600_000_000);
    let mut v = serde_json::to_value(&resp).unwrap();
    let calls = v["choices"][0]["message"]["tool_calls"]
        .as_array_mut()
        .unwrap();
    let id0 = calls[0]["id"].as_str().unwrap().to_owned();
    let id1 = calls[1]["id"].as_str().unwrap().to_owned();
    let (base0, sig0) = id0.split_once("__thought__").unwrap();
    assert!(is_generated_call_id(base0), "{id0}");
    assert_eq!(sig0, "SIG_A");
    assert!(is_generated_call_id(&id1), "{id1}");
    assert_ne!(base0, id1);
    calls[0]["id"] = json!("ID0");
    calls[1]["id"] = json!("ID1");
    v["created"] = json!(0);
    assert_eq!(
        v,
        json!({
            "id": "resp-1",
            "object": "chat.completion",
            "created": 0,
            "model": "gemini-2.5-flash-001",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check. ",
                    "reasoning_content": "Thinking about weather",
                    "tool_calls": [
                        {"id": "ID0", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                         "provider_specific_fields": {"thought_signature": "SIG_A"}},
                        {"id": "ID1", "type": "function",
                         "function": {"name": "get_time", "arguments": "{}"}}
                    ]
                },
                "finish_reason": "tool_calls"
            }],
            "usage": {
                "prompt_tokens": 10, "completion_tokens": 25, "total_tokens": 35,
                "completion_tokens_details": {"reasoning_tokens": 5},
                "prompt_tokens_details": {"cached_tokens": 4}
            }
        })
    );
}

#[test]
fn finish_reasons_blocked_prompts_and_inclusive_usage() {
    let one = |finish: &str| {
        let r = parse(
            json!({"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":finish}],
                   "usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,"thoughtsTokenCount":2,"totalTokenCount":7}}),
            "gemini-2.5-flash",
        );
        (r.choices[0].finish_reason.clone().unwrap(), r)
    };
    assert_eq!(one("STOP").0, "stop");
    assert_eq!(one("MAX_TOKENS").0, "length");
    for f in [
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
    ] {
        assert_eq!(one(f).0, "content_filter", "{f}");
    }
    // prompt + candidates == total: thoughts already counted.
    let (_, r) = one("STOP");
    let u = r.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (3, 4, 7)
    );
    assert!(r.id.starts_with("chatcmpl-"));
    assert_eq!(r.model, "gemini-2.5-flash");

    let blocked = parse(
        json!({"promptFeedback":{"blockReason":"SAFETY"},
               "usageMetadata":{"promptTokenCount":5,"totalTokenCount":5}}),
        "gemini-2.5-flash",
    );
    assert_eq!(blocked.choices.len(), 1);
    assert_eq!(
        blocked.choices[0].finish_reason.as_deref(),
        Some("content_filter")
    );
    assert_eq!(blocked.choices[0].message.content, None);
    assert_eq!(blocked.choices[0].message.role, "assistant");
    assert_eq!(blocked.usage.unwrap().prompt_tokens, 5);

    assert!(matches!(
        Gemini.parse_chat_response(b"not json", &target("m")),
        Err(TranslateError::InvalidResponse(_))
    ));
}

// ------------------------------------------------------------------ stream

fn run(events: &[Value], model: &str) -> (Vec<ChatChunk>, Box<dyn StreamTranslator>) {
    let mut s = Gemini.chat_stream(&target(model));
    let mut out = Vec::new();
    for e in events {
        out.extend(s.on_event(&ev(e.clone())).unwrap().unwrap());
    }
    (out, s)
}

#[test]
fn golden_stream_text_thoughts_tool_calls_finish_and_usage() {
    let (chunks, s) = run(
        &[
            json!({"candidates":[{"content":{"role":"model","parts":[{"text":"Hmm","thought":true}]},"index":0}],
                   "usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},
                   "modelVersion":"gemini-2.5-flash","responseId":"r-9"}),
            json!({"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]},"index":0}],"responseId":"r-9"}),
            json!({"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},"index":0}],"responseId":"r-9"}),
            json!({"candidates":[{"content":{"role":"model","parts":[
                {"functionCall":{"name":"f","args":{"a":1}},"thoughtSignature":"S1"}]},"index":0}]}),
            json!({"candidates":[{"content":{"role":"model","parts":[
                {"functionCall":{"name":"g","args":{}}}]},"finishReason":"STOP","index":0}],
                   "usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":6,"thoughtsTokenCount":3,"totalTokenCount":17}}),
        ],
        "gemini-2.5-flash",
    );
    assert_eq!(chunks.len(), 6);
    let created = chunks[0].created;
    assert!(created > 1_600_000_000);
    let mut v: Vec<Value> = chunks
        .iter()
        .map(|c| {
            assert_eq!(c.id, "r-9");
            assert_eq!(c.created, created);
            serde_json::to_value(c).unwrap()
        })
        .collect();
    let id_f = v[3]["choices"][0]["delta"]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id_g = v[4]["choices"][0]["delta"]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (base_f, sig_f) = id_f.split_once("__thought__").unwrap();
    assert!(is_generated_call_id(base_f) && sig_f == "S1", "{id_f}");
    assert!(is_generated_call_id(&id_g), "{id_g}");
    v[3]["choices"][0]["delta"]["tool_calls"][0]["id"] = json!("F");
    v[4]["choices"][0]["delta"]["tool_calls"][0]["id"] = json!("G");
    for c in &mut v {
        c["created"] = json!(0);
    }
    let frame = |choices: Value| json!({"id":"r-9","object":"chat.completion.chunk","created":0,"model":"gemini-2.5-flash","choices":choices});
    let expected = vec![
        frame(
            json!([{"index":0,"delta":{"role":"assistant","reasoning_content":"Hmm"},"finish_reason":null}]),
        ),
        frame(json!([{"index":0,"delta":{"content":"Hel"},"finish_reason":null}])),
        frame(json!([{"index":0,"delta":{"content":"lo"},"finish_reason":null}])),
        frame(json!([{"index":0,"delta":{"tool_calls":[
            {"index":0,"id":"F","type":"function","function":{"name":"f","arguments":"{\"a\":1}"},
             "provider_specific_fields":{"thought_signature":"S1"}}]},"finish_reason":null}])),
        frame(json!([{"index":0,"delta":{"tool_calls":[
            {"index":1,"id":"G","type":"function","function":{"name":"g","arguments":"{}"}}]},
            "finish_reason":"tool_calls"}])),
        json!({"id":"r-9","object":"chat.completion.chunk","created":0,"model":"gemini-2.5-flash","choices":[],
               "usage":{"prompt_tokens":8,"completion_tokens":9,"total_tokens":17,
                        "completion_tokens_details":{"reasoning_tokens":3}}}),
    ];
    assert_eq!(v, expected);
    let u = s.usage().unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (8, 9, 17)
    );
}

#[test]
fn stream_finish_in_an_empty_chunk_and_late_usage() {
    let (chunks, s) = run(
        &[
            json!({"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}),
            json!({"candidates":[{"content":{"parts":[{"text":""}]},"finishReason":"MAX_TOKENS"}]}),
            json!({"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":1,"totalTokenCount":3}}),
            json!({"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":1,"totalTokenCount":3}}),
        ],
        "gemini-2.5-flash",
    );
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    assert!(chunks[0].id.starts_with("chatcmpl-"));
    assert!(chunks.iter().all(|c| c.id == chunks[0].id));
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    assert_eq!(chunks[0].choices[0].delta.content.as_deref(), Some("Hi"));
    assert_eq!(chunks[1].choices[0].delta.role, None);
    assert_eq!(chunks[1].choices[0].delta.content, None);
    assert_eq!(
        chunks[1].choices[0].finish_reason.as_deref(),
        Some("length")
    );
    assert!(chunks[2].choices.is_empty());
    assert_eq!(chunks[2].usage.as_ref().unwrap().total_tokens, 3);
    assert_eq!(s.usage().unwrap().total_tokens, 3);
}

#[test]
fn stream_blocked_prompt_and_in_stream_errors() {
    let (chunks, _) = run(
        &[
            json!({"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},
                 "usageMetadata":{"promptTokenCount":4,"totalTokenCount":4}}),
        ],
        "gemini-2.5-flash",
    );
    assert_eq!(chunks.len(), 2);
    assert_eq!(
        chunks[0].choices[0].finish_reason.as_deref(),
        Some("content_filter")
    );
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    assert_eq!(chunks[1].usage.as_ref().unwrap().prompt_tokens, 4);

    let mut s = Gemini.chat_stream(&target("gemini-2.5-flash"));
    match s.on_event(&ev(
        json!({"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}),
    )) {
        Err(TranslateError::Upstream(e)) => {
            assert_eq!(e.status, 429);
            assert_eq!(e.message, "Quota exceeded");
            assert_eq!(e.kind.as_deref(), Some("RESOURCE_EXHAUSTED"));
            assert_eq!(e.provider_label, "GeminiException");
        }
        other => panic!("expected an upstream error, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        s.on_event(&SseEvent {
            event: None,
            data: "{oops".into()
        }),
        Err(TranslateError::InvalidResponse(_))
    ));
    assert_eq!(
        s.on_event(&SseEvent {
            event: None,
            data: String::new()
        })
        .unwrap()
        .unwrap()
        .len(),
        0
    );
}

// ------------------------------------------------------------------- errors

#[test]
fn google_errors_keep_message_status_and_code() {
    let t = target("gemini-2.5-flash");
    let e = Gemini.parse_error(
        429,
        br#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#,
        &t,
    );
    assert_eq!(e.status, 429);
    assert_eq!(e.message, "Resource has been exhausted (e.g. check quota).");
    assert_eq!(e.kind.as_deref(), Some("RESOURCE_EXHAUSTED"));
    assert_eq!(e.code, Some(json!(429)));
    assert_eq!(e.provider_label, "GeminiException");

    let wrapped = Gemini.parse_error(
        400,
        br#"[{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}]"#,
        &t,
    );
    assert_eq!(
        (wrapped.message.as_str(), wrapped.kind.as_deref()),
        ("API key not valid.", Some("INVALID_ARGUMENT"))
    );

    let raw = Gemini.parse_error(502, "x".repeat(5000).as_bytes(), &t);
    assert_eq!(raw.message.len(), 2048);
    assert_eq!(raw.kind, None);
    let html = Gemini.parse_error(503, b"<html>unavailable</html>", &t);
    assert_eq!(html.message, "<html>unavailable</html>");
    let empty = Gemini.parse_error(500, b"", &t);
    assert!(empty.message.contains("500"), "{}", empty.message);
}

// -------------------------------------------------- thought-signature replay

/// What a plain OpenAI client sends back: role, content, and tool calls with
/// only id/type/function — every extra field dropped.
fn plain_client_echo(resp: &ChatResponse) -> Value {
    let m = &resp.choices[0].message;
    let calls: Vec<Value> = m
        .tool_calls
        .iter()
        .flatten()
        .map(|c| {
            let f = c.function.as_ref().unwrap();
            json!({"id": c.id, "type": "function",
                   "function": {"name": f.name, "arguments": f.arguments}})
        })
        .collect();
    json!({"role": "assistant", "content": m.content.as_ref().map(|c| c.text()), "tool_calls": calls})
}

/// Rebuild a streamed assistant message from its chunks, as an SDK does.
fn assemble(chunks: &[ChatChunk]) -> Vec<Value> {
    chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .flat_map(|c| c.delta.tool_calls.iter().flatten())
        .map(|d| serde_json::to_value(&d.call).unwrap())
        .collect()
}

#[test]
fn three_turn_tool_conversation_replays_every_signature() {
    let model = "gemini-3-pro-preview";
    let t = target(model);
    let tools = json!([
        {"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
        {"type":"function","function":{"name":"book_table","parameters":{"type":"object","properties":{"when":{"type":"string"}}}}}
    ]);
    let request = |messages: &Vec<Value>, stream: bool| {
        chat(json!({"model":"group","messages":messages,"tools":tools,"stream":stream}))
    };
    let send = |req: &ChatRequest| -> Value {
        let up = Gemini
            .chat_request(req, &t, BuildOptions::default())
            .unwrap();
        let body = String::from_utf8(up.body.to_vec()).unwrap();
        assert!(
            !body.contains("__thought__"),
            "signature suffix leaked: {body}"
        );
        assert!(
            !body.contains("c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="),
            "a real signature was replaced by the placeholder: {body}"
        );
        serde_json::from_str(&body).unwrap()
    };

    // Turn 1: the user asks; Gemini answers with a signed function call.
    let mut messages = vec![json!({"role":"user","content":"Weather in Paris, then book dinner"})];
    let body1 = send(&request(&messages, false));
    assert_eq!(body1["contents"].as_array().unwrap().len(), 1);
    let resp1 = Gemini
        .parse_chat_response(
            json!({"candidates":[{"content":{"role":"model","parts":[
                {"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"SIG_TURN_1"}
            ]},"finishReason":"STOP"}],"responseId":"t1"})
            .to_string()
            .as_bytes(),
            &t,
        )
        .unwrap();
    assert_eq!(
        resp1.choices[0].finish_reason.as_deref(),
        Some("tool_calls")
    );
    // A plain client keeps only the id, which carries the signature.
    let echo1 = plain_client_echo(&resp1);
    let id1 = echo1["tool_calls"][0]["id"].as_str().unwrap().to_owned();
    assert!(id1.ends_with("__thought__SIG_TURN_1"), "{id1}");
    messages.push(echo1);
    messages.push(json!({"role":"tool","tool_call_id":id1,"content":"{\"temp_c\":18}"}));

    // Turn 2 (streamed): the signature is back on the function call part;
    // Gemini answers with a second signed call.
    let body2 = send(&request(&messages, true));
    assert_eq!(
        body2["contents"],
        json!([
            {"role":"user","parts":[{"text":"Weather in Paris, then book dinner"}]},
            {"role":"model","parts":[
                {"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"SIG_TURN_1"}]},
            {"role":"user","parts":[
                {"functionResponse":{"name":"get_weather","response":{"temp_c":18}}}]}
        ])
    );
    let mut stream = Gemini.chat_stream(&t);
    let mut chunks = Vec::new();
    for e in [
        json!({"candidates":[{"content":{"role":"model","parts":[{"text":"It is mild. "}]}}],"responseId":"t2"}),
        json!({"candidates":[{"content":{"role":"model","parts":[
            {"functionCall":{"name":"book_table","args":{"when":"20:00"}},"thoughtSignature":"SIG_TURN_2"}]},
            "finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":30,"candidatesTokenCount":12,"totalTokenCount":42},"responseId":"t2"}),
    ] {
        chunks.extend(stream.on_event(&ev(e)).unwrap().unwrap());
    }
    let calls2 = assemble(&chunks);
    assert_eq!(calls2.len(), 1);
    assert_eq!(
        calls2[0]["provider_specific_fields"]["thought_signature"],
        "SIG_TURN_2"
    );
    // This client keeps provider_specific_fields but shortens the id.
    let full_id2 = calls2[0]["id"].as_str().unwrap();
    let short_id2 = full_id2.split("__thought__").next().unwrap().to_owned();
    let mut call2 = calls2[0].clone();
    call2["id"] = json!(short_id2);
    messages.push(json!({"role":"assistant","content":"It is mild. ","tool_calls":[call2]}));
    messages.push(json!({"role":"tool","tool_call_id":short_id2,"content":"booked for 20:00"}));

    // Turn 3: both signatures reach the upstream, each on its own call.
    let body3 = send(&request(&messages, false));
    assert_eq!(
        body3["contents"],
        json!([
            {"role":"user","parts":[{"text":"Weather in Paris, then book dinner"}]},
            {"role":"model","parts":[
                {"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"SIG_TURN_1"}]},
            {"role":"user","parts":[
                {"functionResponse":{"name":"get_weather","response":{"temp_c":18}}}]},
            {"role":"model","parts":[
                {"text":"It is mild. "},
                {"functionCall":{"name":"book_table","args":{"when":"20:00"}},"thoughtSignature":"SIG_TURN_2"}]},
            {"role":"user","parts":[
                {"functionResponse":{"name":"book_table","response":{"content":"booked for 20:00"}}}]}
        ])
    );
    let resp3 = Gemini
        .parse_chat_response(
            json!({"candidates":[{"content":{"role":"model","parts":[{"text":"Booked."}]},"finishReason":"STOP"}]})
                .to_string()
                .as_bytes(),
            &t,
        )
        .unwrap();
    assert_eq!(
        resp3.choices[0].message.content.as_ref().map(|c| c.text()),
        Some("Booked.".to_owned())
    );
    assert_eq!(resp3.choices[0].finish_reason.as_deref(), Some("stop"));
}
