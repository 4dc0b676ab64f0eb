//! An in-process gateway with a store (in-memory SQLite unless a URL is
//! given), for management-API tests. Include with
//! `#[path = "common/admin_gateway.rs"] mod admin_gateway;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use ferrolite_core::config::{load_str, Env};
use ferrolite_core::Gateway;
use ferrolite_server::AppState;
use ferrolite_store::Store;
use serde_json::Value;

pub const ADMIN_KEY: &str = "sk-admin-test-0123456789";

pub struct AdminGateway {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub store: Arc<Store>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for AdminGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn state(store: Option<Arc<Store>>) -> AppState {
    let yaml = format!("general_settings:\n  master_key: {ADMIN_KEY}\n");
    let env = Env::isolated(Vec::<(String, String)>::new());
    let cfg = load_str(&yaml, Path::new("."), &env).unwrap();
    let st = AppState::new(Gateway::new(cfg).unwrap());
    match store {
        Some(s) => st.with_store(s),
        None => st,
    }
}

async fn serve(app: Router) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    (addr, tx)
}

impl AdminGateway {
    /// The full app, master key [`ADMIN_KEY`], an in-memory SQLite store.
    pub async fn start() -> Self {
        let store = Arc::new(Store::connect("sqlite::memory:").await.unwrap());
        Self::start_app(ferrolite_server::build_app, Some(store)).await
    }

    /// The full app with no store attached.
    pub async fn start_without_store() -> Self {
        let store = Arc::new(Store::connect("sqlite::memory:").await.unwrap());
        let (addr, tx) = serve(ferrolite_server::build_app(state(None))).await;
        Self {
            addr,
            http: reqwest::Client::new(),
            store,
            shutdown: Some(tx),
        }
    }

    /// Any router built from the state (e.g. the admin routes behind a
    /// custom authentication layer).
    pub async fn start_app(
        build: impl FnOnce(AppState) -> Router,
        store: Option<Arc<Store>>,
    ) -> Self {
        let store = match store {
            Some(s) => s,
            None => Arc::new(Store::connect("sqlite::memory:").await.unwrap()),
        };
        let (addr, tx) = serve(build(state(Some(store.clone())))).await;
        Self {
            addr,
            http: reqwest::Client::new(),
            store,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn done(r: reqwest::RequestBuilder) -> (u16, Value) {
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, v)
    }

    /// POST JSON with the master key.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        Self::done(
            self.http
                .post(self.url(path))
                .bearer_auth(ADMIN_KEY)
                .json(&body),
        )
        .await
    }

    /// POST a raw body with the master key.
    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        Self::done(
            self.http
                .post(self.url(path))
                .bearer_auth(ADMIN_KEY)
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    /// GET with the master key.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        Self::done(self.http.get(self.url(path)).bearer_auth(ADMIN_KEY)).await
    }

    /// GET with another key (or none).
    pub async fn get_as(&self, key: Option<&str>, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path));
        Self::done(match key {
            Some(k) => r.bearer_auth(k),
            None => r,
        })
        .await
    }
}
