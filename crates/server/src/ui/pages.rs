//! The UI's pages: a server-rendered shell (navigation, headings, forms,
//! empty tables) filled in by `app.js` from the JSON APIs. The login page
//! and logout work without JavaScript.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::Extension;
use http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use serde::Deserialize;

use super::{html, redirect, session, Ui};

const LAYOUT: &str = include_str!("../../assets/ui/layout.html");
const LOGIN: &str = include_str!("../../assets/ui/login.html");

/// One page: path, nav label, title, body template.
struct Page {
    path: &'static str,
    nav: &'static str,
    title: &'static str,
    body: &'static str,
}

const PAGES: &[Page] = &[
    Page {
        path: "/ui",
        nav: "Overview",
        title: "Overview",
        body: include_str!("../../assets/ui/pages/overview.html"),
    },
    Page {
        path: "/ui/models",
        nav: "Models",
        title: "Models",
        body: include_str!("../../assets/ui/pages/models.html"),
    },
    Page {
        path: "/ui/keys",
        nav: "Keys",
        title: "Virtual keys",
        body: include_str!("../../assets/ui/pages/keys.html"),
    },
    Page {
        path: "/ui/teams",
        nav: "Users & teams",
        title: "Users and teams",
        body: include_str!("../../assets/ui/pages/teams.html"),
    },
    Page {
        path: "/ui/logs",
        nav: "Logs",
        title: "Request logs",
        body: include_str!("../../assets/ui/pages/logs.html"),
    },
    Page {
        path: "/ui/usage",
        nav: "Usage",
        title: "Usage",
        body: include_str!("../../assets/ui/pages/usage.html"),
    },
];

/// Escape text for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render(ui: &Ui, sess: &session::Session, index: usize) -> Response {
    let page = &PAGES[index];
    let nav: String = PAGES
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let current = if i == index {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<li><a href=\"{}\"{current}>{}</a></li>", p.path, p.nav)
        })
        .collect();
    let slug = page.path.trim_start_matches("/ui").trim_start_matches('/');
    let slug = if slug.is_empty() { "overview" } else { slug };
    let body = LAYOUT
        .replace("{{title}}", page.title)
        .replace("{{page}}", slug)
        .replace("{{nav}}", &nav)
        .replace("{{csrf}}", &ui.sessions().csrf(sess))
        .replace(
            "{{logout}}",
            if ui.login_required() { "" } else { " hidden" },
        )
        .replace("{{version}}", ferrolite_core::VERSION)
        .replace("{{content}}", page.body);
    html(StatusCode::OK, body)
}

/// Serve page `index` to a logged-in user; send anyone else to the login page.
fn guarded(ui: &Ui, headers: &HeaderMap, uri: &Uri, index: usize) -> Response {
    match ui.session(headers) {
        Some(s) => render(ui, &s, index),
        None => to_login(uri),
    }
}

fn to_login(uri: &Uri) -> Response {
    let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/ui");
    redirect(&format!("/ui/login?next={}", percent_encode(next)))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

macro_rules! page_handler {
    ($name:ident, $index:expr) => {
        pub async fn $name(Extension(ui): Extension<Ui>, headers: HeaderMap, uri: Uri) -> Response {
            guarded(&ui, &headers, &uri, $index)
        }
    };
}

page_handler!(overview, 0);
page_handler!(models, 1);
page_handler!(keys, 2);
page_handler!(teams, 3);
page_handler!(logs, 4);
page_handler!(usage, 5);

/// An unknown page under `/ui`: 404 for a logged-in user, login otherwise.
pub async fn not_found(Extension(ui): Extension<Ui>, headers: HeaderMap, uri: Uri) -> Response {
    if ui.session(&headers).is_none() {
        return to_login(&uri);
    }
    html(
        StatusCode::NOT_FOUND,
        LOGIN
            .replace(
                "{{error}}",
                "<p class=\"notice\">No such page. <a href=\"/ui\">Back to the overview</a>.</p>",
            )
            .replace("{{next}}", "/ui")
            .replace("{{form}}", " hidden"),
    )
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only local UI paths are followed after login (no open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if is_local_ui(n) => n,
        _ => "/ui",
    }
}

fn is_local_ui(n: &str) -> bool {
    (n == "/ui" || n.starts_with("/ui/") || n.starts_with("/ui?"))
        && !n.contains("//")
        && !n.contains('\\')
        && !n.starts_with("/ui/login")
}

fn login_html(status: StatusCode, error: &str, next: &str) -> Response {
    let error = if error.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(error))
    };
    html(
        status,
        LOGIN
            .replace("{{error}}", &error)
            .replace("{{next}}", &escape(next))
            .replace("{{form}}", ""),
    )
}

pub async fn login_page(
    Extension(ui): Extension<Ui>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if !ui.login_required() || ui.session(&headers).is_some() {
        return redirect(next);
    }
    login_html(StatusCode::OK, "", next)
}

#[derive(Deserialize, Default)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize, Default)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// Decode an `application/x-www-form-urlencoded` body.
fn parse_form<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(body).ok()?;
    let uri: Uri = format!("/?{text}").parse().ok()?;
    Query::<T>::try_from_uri(&uri).ok().map(|q| q.0)
}

/// Whether a browser request comes from this very site: its `Origin` (or,
/// lacking that, `Referer`) names the host it was sent to. Clients that send
/// neither (curl, scripts) are not browsers and pass.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match from {
        None => true,
        Some(o) => {
            let rest = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                .unwrap_or("");
            let authority = rest.split('/').next().unwrap_or("");
            !host.is_empty() && authority.eq_ignore_ascii_case(host)
        }
    }
}

fn behind_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

pub async fn login(Extension(ui): Extension<Ui>, headers: HeaderMap, body: Bytes) -> Response {
    let form: LoginForm = parse_form(&body).unwrap_or_default();
    let next = safe_next(form.next.as_deref()).to_owned();
    if !same_origin(&headers) {
        return login_html(
            StatusCode::FORBIDDEN,
            "This login form was sent from another site.",
            &next,
        );
    }
    if !ui.check_login(form.username.trim(), &form.password) {
        // Slow down guessing.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        tracing::warn!("UI login failed");
        return login_html(
            StatusCode::UNAUTHORIZED,
            "Wrong credentials. Use the master key as the password, or UI_USERNAME and UI_PASSWORD.",
            &next,
        );
    }
    let (_, cookie) = ui.sessions().issue();
    let mut r = redirect(&next);
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&cookie, behind_https(&headers))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

pub async fn logout(Extension(ui): Extension<Ui>, headers: HeaderMap, body: Bytes) -> Response {
    let form: LogoutForm = parse_form(&body).unwrap_or_default();
    let token = headers
        .get(session::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(&form.csrf)
        .to_owned();
    if let Some(s) = ui.session(&headers) {
        if !ui.sessions().check_csrf(&s, &token) {
            return html(
                StatusCode::FORBIDDEN,
                "<p>Missing or invalid CSRF token: go back, reload the page and try again.</p>"
                    .into(),
            );
        }
        ui.sessions().revoke(&s);
    }
    let mut r = redirect("/ui/login");
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The embedded static files. Open to everyone: they hold no data.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, ctype): (&'static [u8], &str) = match file.as_str() {
        "app.css" => (
            include_bytes!("../../assets/ui/app.css"),
            "text/css; charset=utf-8",
        ),
        "app.js" => (
            include_bytes!("../../assets/ui/app.js"),
            "text/javascript; charset=utf-8",
        ),
        "charts.js" => (
            include_bytes!("../../assets/ui/charts.js"),
            "text/javascript; charset=utf-8",
        ),
        "favicon.svg" => (
            include_bytes!("../../assets/ui/favicon.svg"),
            "image/svg+xml",
        ),
        _ => return html(StatusCode::NOT_FOUND, "not found".into()),
    };
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(ctype)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_ui_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/ui/keys")), "/ui/keys");
        assert_eq!(safe_next(Some("/ui?x=1")), "/ui?x=1");
        assert_eq!(safe_next(Some("https://evil.example/")), "/ui");
        assert_eq!(safe_next(Some("//evil.example/ui")), "/ui");
        assert_eq!(safe_next(Some("/ui//evil")), "/ui");
        assert_eq!(safe_next(Some("/ui/login")), "/ui");
        assert_eq!(safe_next(None), "/ui");
    }

    #[test]
    fn forms_decode() {
        let f: LoginForm =
            parse_form(b"username=admin&password=sk-a%2Bb+c&next=%2Fui%2Fkeys").unwrap();
        assert_eq!(f.username, "admin");
        assert_eq!(f.password, "sk-a+b c");
        assert_eq!(f.next.as_deref(), Some("/ui/keys"));
    }

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("gw:4000"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://gw:4000"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil:4000"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }
}
