//! The admin web UI at `/ui`: server-rendered page shells, one stylesheet and
//! one script embedded in the binary, and a few read-only JSON endpoints under
//! `/ui/api/` for what the management API does not give (aggregates, model
//! health, filtered logs). Everything else — keys, users, teams — the pages do
//! through the gateway's own management API.
//!
//! Access: log in with the master key (or `UI_USERNAME`/`UI_PASSWORD`, as
//! LiteLLM) to get a session cookie (see [`session`]). [`apply_session`] lets
//! that cookie stand for the master key on the gateway's other routes, and
//! requires the session's CSRF token on every state-changing request it
//! authorizes. UI pages without a session redirect to the login page; the
//! UI's API answers 401.

mod api;
mod pages;
pub mod session;
mod stats;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use ferrolite_core::auth;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use crate::state::AppState;
use session::{Session, Sessions};

/// Who may log in besides the master key.
#[derive(Clone, Default)]
pub struct UiLogin {
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for UiLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiLogin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl UiLogin {
    /// `UI_USERNAME` and `UI_PASSWORD` from the process environment.
    pub fn from_env() -> Self {
        let env = ferrolite_core::config::Env::process();
        Self {
            username: env.get("UI_USERNAME").filter(|v| !v.is_empty()),
            password: env.get("UI_PASSWORD").filter(|v| !v.is_empty()),
        }
    }
}

/// The UI's own state: session keys and login settings.
#[derive(Clone, Debug)]
pub struct Ui(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    sessions: Sessions,
    login: UiLogin,
    master: Option<String>,
}

impl Ui {
    pub fn new(state: &AppState, login: UiLogin) -> Self {
        let master = state.gw.master_key().map(|k| k.expose().to_owned());
        Self::with(master, login)
    }

    fn with(master: Option<String>, login: UiLogin) -> Self {
        Self(Arc::new(Inner {
            sessions: Sessions::new(master.as_deref()),
            login,
            master,
        }))
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }

    /// Whether the UI needs a login at all (an open gateway has nothing to protect).
    pub(crate) fn login_required(&self) -> bool {
        self.0.master.is_some() || self.0.login.password.is_some()
    }

    /// Whether these credentials log in: the master key as the password (any
    /// user name, LiteLLM's UI sends `admin`), or `UI_USERNAME`/`UI_PASSWORD`.
    pub(crate) fn check_login(&self, username: &str, password: &str) -> bool {
        if password.is_empty() {
            return false;
        }
        let by_master = self
            .0
            .master
            .as_deref()
            .is_some_and(|m| session::same_secret(password, m));
        let by_user = match (&self.0.login.username, &self.0.login.password) {
            (Some(u), Some(p)) => {
                session::same_secret(username, u) & session::same_secret(password, p)
            }
            _ => false,
        };
        by_master || by_user
    }

    /// The session the request's cookie carries, if valid. With no login
    /// required, every request has one (a fixed, unsigned session).
    pub(crate) fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|h| session::cookie_value(h, session::COOKIE));
        match cookie {
            Some(c) => self.0.sessions.verify(c),
            None if !self.login_required() => Some(Session {
                nonce: "open".into(),
                expires: u64::MAX,
            }),
            None => None,
        }
    }

    pub(crate) fn csrf_ok(&self, s: &Session, headers: &HeaderMap) -> bool {
        headers
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| self.0.sessions.check_csrf(s, t))
    }
}

/// Paths the UI serves (its own session checks apply, not the key check).
pub fn is_ui_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// Add the UI's routes.
pub fn routes(r: Router<AppState>, ui: Ui) -> Router<AppState> {
    let ui_routes = Router::new()
        .route("/ui", get(pages::overview))
        .route("/ui/", get(pages::overview))
        .route("/ui/models", get(pages::models))
        .route("/ui/keys", get(pages::keys))
        .route("/ui/teams", get(pages::teams))
        .route("/ui/logs", get(pages::logs))
        .route("/ui/usage", get(pages::usage))
        .route("/ui/login", get(pages::login_page).post(pages::login))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/assets/{file}", get(pages::asset))
        .route("/ui/api/session", get(api::session_info))
        .route("/ui/api/models", get(api::models))
        .route("/ui/api/overview", get(api::overview))
        .route("/ui/api/logs", get(api::logs))
        .route("/ui/api/usage", get(api::usage))
        .route("/ui/api/usage.csv", get(api::usage_csv))
        .route("/ui/api/{*rest}", get(api::not_found))
        .route("/ui/{*rest}", get(pages::not_found))
        .layer(Extension(ui));
    r.merge(ui_routes)
}

fn has_presented_key(h: &HeaderMap) -> bool {
    h.contains_key(header::AUTHORIZATION) || auth::KEY_HEADERS.iter().any(|n| h.contains_key(*n))
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Let a UI session stand for the master key on the gateway's other routes
/// (the management API, a model test call). A request that presents a key
/// itself is left alone. State-changing requests must carry the session's
/// CSRF token in `x-csrf-token`.
pub fn apply_session(ui: &Ui, mut req: Request) -> Result<Request, Box<Response>> {
    if is_ui_path(req.uri().path())
        || has_presented_key(req.headers())
        || crate::routes::gemini::query_key(req.uri()).is_some()
    {
        return Ok(req);
    }
    let Some(master) = ui.0.master.clone() else {
        return Ok(req);
    };
    let Some(sess) = ui.session(req.headers()) else {
        return Ok(req);
    };
    if !is_safe(req.method()) && !ui.csrf_ok(&sess, req.headers()) {
        return Err(Box::new(api::json_error(
            StatusCode::FORBIDDEN,
            "Missing or invalid CSRF token: reload the page and try again.",
        )));
    }
    if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {master}")) {
        v.set_sensitive(true);
        req.headers_mut().insert(header::AUTHORIZATION, v);
    }
    Ok(req)
}

/// A response with `Cache-Control: no-store` and the UI's content policy.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    no_store(h);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

pub(crate) fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `303 See Other` to `to`.
pub(crate) fn redirect(to: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    no_store(r.headers_mut());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_by_master_key_or_ui_username_and_password() {
        let login = UiLogin {
            username: Some("ops".into()),
            password: Some("s3cret-pass".into()),
        };
        let ui = Ui::with(Some("sk-master-1".into()), login.clone());
        assert!(ui.check_login("admin", "sk-master-1"));
        assert!(ui.check_login("", "sk-master-1"));
        assert!(ui.check_login("ops", "s3cret-pass"));
        assert!(!ui.check_login("admin", "s3cret-pass"));
        assert!(!ui.check_login("ops", "sk-master-2"));
        assert!(!ui.check_login("ops", ""));
        // UI_USERNAME/UI_PASSWORD alone also require a login.
        let ui = Ui::with(None, login);
        assert!(ui.login_required());
        assert!(ui.check_login("ops", "s3cret-pass"));
        assert!(ui.session(&HeaderMap::new()).is_none());
        // Nothing configured: an open gateway, an open UI.
        let ui = Ui::with(None, UiLogin::default());
        assert!(!ui.login_required());
        assert!(!ui.check_login("admin", "anything"));
        assert!(ui.session(&HeaderMap::new()).is_some());
    }

    #[test]
    fn ui_paths() {
        assert!(is_ui_path("/ui"));
        assert!(is_ui_path("/ui/keys"));
        assert!(is_ui_path("/ui/api/models"));
        assert!(!is_ui_path("/uix"));
        assert!(!is_ui_path("/key/list"));
    }
}
