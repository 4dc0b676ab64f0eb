use super::*;

#[test]
fn traceparent_parsing() {
    let p = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    assert_eq!(hex::encode(p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex::encode(p.span_id), "00f067aa0ba902b7");
    assert_eq!(p.flags, 1);
    // A later version may carry more fields.
    assert!(
        parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-xyz").is_some()
    );
    for bad in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
    ] {
        assert!(parse_traceparent(bad).is_none(), "{bad}");
    }
}

fn settings() -> OtelSettings {
    let env = crate::config::Env::isolated(Vec::<(String, String)>::new());
    settings::parse(&["otel".into()], &env, &mut Vec::new()).unwrap()
}

#[test]
fn request_continues_the_callers_trace() {
    let otel = Arc::new(Otel {
        exporter: export::Exporter::new(settings()),
    });
    let mut h = http::HeaderMap::new();
    h.insert(
        TRACEPARENT,
        http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
    );
    h.insert(TRACESTATE, http::HeaderValue::from_static("vendor=1"));
    let t = otel.request(&h);
    assert_eq!(hex::encode(t.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        t.parent_span_id.map(hex::encode).as_deref(),
        Some("00f067aa0ba902b7")
    );
    assert!(!t.sampled);
    let d = crate::config::DeploymentConfig {
        id: "dep-1".into(),
        model_name: "g".into(),
        litellm_model: "openai/gpt-4o".into(),
        target: None,
        unsupported: None,
        api_key: None,
        cloud: None,
        timeout: None,
        stream_timeout: None,
        max_retries: None,
        rpm: None,
        tpm: None,
        weight: None,
        order: None,
        max_parallel_requests: None,
        mock_response: None,
        drop_params: None,
        additional_drop_params: Vec::new(),
        tags: Vec::new(),
        defaults: None,
        model_info: Default::default(),
        public_params: Default::default(),
        index: 0,
    };
    let a = t.attempt(CallType::Chat, &d, "g");
    let tp = a.traceparent();
    let parsed = parse_traceparent(&tp).unwrap();
    assert_eq!(parsed.trace_id, t.trace_id);
    assert_ne!(parsed.span_id, t.span_id);
    assert_eq!(parsed.flags, 0);
    let mut headers = Vec::new();
    a.inject(&mut headers);
    assert_eq!(headers.len(), 2);
    // Unsampled: nothing is queued.
    a.end(None);
    assert!(otel.exporter.take_batch_for_test().is_empty());

    // No caller: a new sampled trace; the request span comes from the record.
    let t = otel.request(&http::HeaderMap::new());
    assert!(t.sampled && t.parent_span_id.is_none());
    let rec = CallRecord {
        call_id: "c1".into(),
        requested_model: "g".into(),
        start_time: Some(SystemTime::now()),
        latency: Duration::from_millis(5),
        usage: Some(ferrolite_types::Usage::new(3, 4)),
        meta: crate::pipeline::AnswerMeta {
            upstream_model: "openai/gpt-4o".into(),
            model_group: "g".into(),
            model_id: "dep-1".into(),
            ..Default::default()
        },
        trace: Some(Arc::clone(&t)),
        ..Default::default()
    };
    OtelSink.record(&rec);
    let spans = otel.exporter.take_batch_for_test();
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!((s.name.as_str(), s.kind), ("chat g", SpanKind::Server));
    assert_eq!(s.span_id, t.span_id);
    assert_eq!(s.end_unix_nano - s.start_unix_nano, 5_000_000);
    let attr = |k: &str| {
        s.attributes
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(attr("gen_ai.usage.input_tokens"), Some(AttrValue::Int(3)));
    assert_eq!(attr("gen_ai.usage.output_tokens"), Some(AttrValue::Int(4)));
    assert_eq!(
        attr("gen_ai.response.model"),
        Some(AttrValue::Str("gpt-4o".into()))
    );
    assert_eq!(
        attr("gen_ai.provider.name"),
        Some(AttrValue::Str("openai".into()))
    );
    assert_eq!(attr("error.type"), None);
}

#[test]
fn a_full_queue_drops_the_oldest() {
    let mut s = settings();
    s.max_queue = 2;
    let e = export::Exporter::new(s);
    for i in 0..3u8 {
        e.push(SpanData {
            trace_id: [1; 16],
            span_id: [i + 1; 8],
            parent_span_id: None,
            trace_state: None,
            name: String::new(),
            kind: SpanKind::Server,
            start_unix_nano: 0,
            end_unix_nano: 0,
            attributes: Vec::new(),
            status: StatusCode::Unset,
            status_message: String::new(),
            flags: 1,
        });
    }
    assert_eq!(e.counters.dropped.load(Ordering::Relaxed), 1);
    let left: Vec<u8> = e
        .take_batch_for_test()
        .iter()
        .map(|s| s.span_id[0])
        .collect();
    assert_eq!(left, vec![2, 3]);
}
