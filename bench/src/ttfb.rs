//! `ttfb`: time-to-first-byte probe for streaming chat completions.
//!
//! Sends `POST <path>` with `"stream": true` over a fresh loopback TCP
//! connection per request (HTTP/1.1, `Connection: close`) and measures, from
//! the moment the request is written (connect time excluded):
//! - `head`: first response byte (status line),
//! - `ttfb`: first SSE event (`data:`) in the body,
//! - `total`: end of the response (EOF).
//!
//! Prints one JSON object with p50/p90/p99 of each, in milliseconds.
//!
//! Usage: `ttfb --url http://127.0.0.1:PORT/v1/chat/completions [--model M]
//!         [--auth TOKEN] [-n REQUESTS] [-c CONCURRENCY] [--warmup N]`

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    host_port: String,
    host_header: String,
    path: String,
    model: String,
    auth: Option<String>,
    n: usize,
    concurrency: usize,
    warmup: usize,
}

fn die(msg: &str) -> ! {
    eprintln!("ttfb: {msg}");
    eprintln!("usage: ttfb --url http://HOST:PORT/PATH [--model M] [--auth TOKEN] [-n N] [-c C] [--warmup N]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut url = None;
    let mut model = "bench".to_owned();
    let mut auth = None;
    let mut n = 500usize;
    let mut concurrency = 1usize;
    let mut warmup = 20usize;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            die(&format!("{flag} needs a value"))
        };
        let num = |v: &str| -> usize {
            v.parse()
                .unwrap_or_else(|_| die(&format!("{flag}: not a number: {v}")))
        };
        match flag.as_str() {
            "--url" => url = Some(value),
            "--model" => model = value,
            "--auth" => auth = Some(value),
            "-n" => n = num(&value).max(1),
            "-c" => concurrency = num(&value).max(1),
            "--warmup" => warmup = num(&value),
            other => die(&format!("unknown option {other}")),
        }
    }
    let Some(url) = url else {
        die("--url is required")
    };
    let Some(rest) = url.strip_prefix("http://") else {
        die("only http:// URLs are supported")
    };
    let (host_port, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    };
    Args {
        host_header: host_port.clone(),
        host_port,
        path,
        model,
        auth,
        n,
        concurrency,
        warmup,
    }
}

struct Sample {
    head: Duration,
    ttfb: Duration,
    total: Duration,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn one(addr: &str, request: &[u8]) -> Result<Sample, String> {
    let mut tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let t0 = Instant::now();
    tcp.write_all(request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 16384];
    let mut head = None;
    let mut body_start = None;
    let mut ttfb = None;
    loop {
        let k = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if k == 0 {
            break;
        }
        let now = t0.elapsed();
        head.get_or_insert(now);
        let scan_from = buf.len().saturating_sub(8);
        buf.extend_from_slice(&chunk[..k]);
        if body_start.is_none() {
            body_start = find(&buf, b"\r\n\r\n").map(|i| i + 4);
        }
        if let (Some(bs), None) = (body_start, ttfb) {
            if find(&buf[bs.max(scan_from)..], b"data:").is_some() {
                ttfb = Some(now);
            }
        }
    }
    let total = t0.elapsed();
    let status_ok = buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200");
    let done = find(&buf, b"[DONE]").is_some();
    match (head, ttfb) {
        (Some(head), Some(ttfb)) if status_ok && done => Ok(Sample { head, ttfb, total }),
        _ => {
            let text = String::from_utf8_lossy(&buf[..buf.len().min(600)]).into_owned();
            Err(format!(
                "bad streaming response (status ok={status_ok}, [DONE]={done}): {text}"
            ))
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    serde_json::json!({"p50": r(pct(&v, 0.50)), "p90": r(pct(&v, 0.90)), "p99": r(pct(&v, 0.99)), "max": r(pct(&v, 1.0))})
}

async fn run(args: Args) {
    let body = format!(
        r#"{{"model":"{}","messages":[{{"role":"user","content":"hello"}}],"stream":true,"stream_options":{{"include_usage":true}}}}"#,
        args.model
    );
    let auth = args
        .auth
        .as_ref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        args.path,
        args.host_header,
        body.len()
    );
    let request = std::sync::Arc::new(request.into_bytes());
    let addr = std::sync::Arc::new(args.host_port.clone());

    for _ in 0..args.warmup {
        if let Err(e) = one(&addr, &request).await {
            eprintln!("ttfb: warmup: {e}");
            println!(r#"{{"error":{}}}"#, serde_json::Value::String(e));
            std::process::exit(1);
        }
    }

    let started = Instant::now();
    let per_task = args.n.div_ceil(args.concurrency);
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (addr, request) = (addr.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = Vec::with_capacity(per_task);
            let mut errors = 0usize;
            let mut first_error = None;
            for _ in 0..per_task {
                match one(&addr, &request).await {
                    Ok(s) => ok.push(s),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (ok, errors, first_error)
        }));
    }
    let mut samples = Vec::new();
    let mut errors = 0usize;
    let mut first_error: Option<String> = None;
    for t in tasks {
        match t.await {
            Ok((ok, e, fe)) => {
                samples.extend(ok);
                errors += e;
                if first_error.is_none() {
                    first_error = fe;
                }
            }
            Err(e) => {
                errors += per_task;
                first_error.get_or_insert(format!("task failed: {e}"));
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(e) = &first_error {
        eprintln!("ttfb: first error: {e}");
    }
    let ms = |f: fn(&Sample) -> Duration| {
        samples
            .iter()
            .map(|s| f(s).as_secs_f64() * 1000.0)
            .collect::<Vec<_>>()
    };
    let out = serde_json::json!({
        "requests": samples.len() + errors,
        "ok": samples.len(),
        "errors": errors,
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "head_ms": summary(ms(|s| s.head)),
        "ttfb_ms": summary(ms(|s| s.ttfb)),
        "total_ms": summary(ms(|s| s.total)),
    });
    println!("{out}");
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match rt {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => die(&format!("cannot start runtime: {e}")),
    }
}
