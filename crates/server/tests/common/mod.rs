//! An in-process gateway on 127.0.0.1:0, built from a YAML config.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod process;

use std::net::SocketAddr;
use std::path::Path;

use ferrolite_core::config::{load_str, Env};
use ferrolite_core::Gateway;
use ferrolite_server::AppState;
use serde_json::Value;

pub const MASTER: &str = "sk-test-master-0123456789";

pub struct TestGateway {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestGateway {
    /// Start a gateway from config text; `general_settings.master_key` is
    /// [`MASTER`] unless the YAML sets general_settings itself.
    pub async fn start(yaml: &str) -> Self {
        Self::start_with_env(yaml, Env::isolated(Vec::<(String, String)>::new())).await
    }

    pub async fn start_with_env(yaml: &str, env: Env) -> Self {
        Self::start_with(yaml, env, |_| {}).await
    }

    /// Start a gateway, letting `setup` change it first (add call sinks…).
    pub async fn start_with(yaml: &str, env: Env, setup: impl FnOnce(&mut Gateway)) -> Self {
        let yaml = if yaml.contains("general_settings") {
            yaml.to_owned()
        } else {
            format!("{yaml}\ngeneral_settings:\n  master_key: {MASTER}\n")
        };
        let cfg =
            load_str(&yaml, Path::new("."), &env).unwrap_or_else(|e| panic!("test config: {e}"));
        let mut gw = Gateway::new(cfg).unwrap();
        setup(&mut gw);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = ferrolite_server::serve(listener, AppState::new(gw), async {
                let _ = rx.await;
            })
            .await;
        });
        Self {
            addr,
            http: ferrolite_core::upstream::client().unwrap(),
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(MASTER)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(MASTER)
    }

    /// POST JSON, return status, headers and the body as JSON.
    pub async fn call(&self, path: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self.post(path).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let v =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, headers, v)
    }

    /// POST JSON expecting SSE; return the `data:` payloads in order.
    pub async fn stream(
        &self,
        path: &str,
        body: Value,
    ) -> (u16, reqwest::header::HeaderMap, Vec<String>) {
        let r = self.post(path).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        (status, headers, sse_data(&text))
    }
}

/// The `data:` payloads of an SSE body.
pub fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|frame| {
            frame
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

/// A one-deployment config pointing `name` at a mock upstream.
pub fn one_model(name: &str, api_base: &str) -> String {
    format!("model_list:\n  - model_name: {name}\n    litellm_params:\n      model: openai/upstream-{name}\n      api_key: sk-upstream-key\n      api_base: {api_base}\n")
}
