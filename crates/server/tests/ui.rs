//! The admin UI's access rules: login, redirects, the session cookie, CSRF,
//! logout, and what the UI's API may reveal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/admin_gateway.rs"]
mod admin_gateway;
mod common;

use common::{TestGateway, MASTER};
use reqwest::header::{HeaderMap, HeaderValue, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

const CONFIG: &str = r#"
model_list:
  - model_name: mock-chat
    litellm_params:
      model: openai/gpt-4o-mini
      mock_response: "hi from the mock"
  - model_name: real-chat
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-upstream-secret-do-not-show
      api_base: http://127.0.0.1:9/v1
      rpm: 60
"#;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Log in with the master key; return the session cookie (`name=value`).
async fn login(gw: &TestGateway, c: &reqwest::Client) -> String {
    let r = c
        .post(gw.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "username=admin&password={MASTER}&next=%2Fui%2Fkeys"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/ui/keys");
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    set.split(';').next().unwrap().to_owned()
}

fn with_cookie(cookie: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
    h
}

/// The CSRF token a page carries.
async fn csrf(gw: &TestGateway, c: &reqwest::Client, cookie: &str) -> String {
    let v: Value = c
        .get(gw.url("/ui/api/session"))
        .headers(with_cookie(cookie))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["csrf_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn without_a_session_pages_redirect_to_login_and_the_api_answers_401() {
    let gw = TestGateway::start(CONFIG).await;
    let c = client();
    for path in [
        "/ui",
        "/ui/",
        "/ui/models",
        "/ui/keys",
        "/ui/teams",
        "/ui/logs",
        "/ui/usage",
        "/ui/anything",
    ] {
        let r = c.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        let to = r.headers()[LOCATION].to_str().unwrap();
        assert!(to.starts_with("/ui/login?next=/ui"), "{path} → {to}");
    }
    for path in [
        "/ui/api/session",
        "/ui/api/models",
        "/ui/api/overview",
        "/ui/api/logs",
        "/ui/api/usage",
        "/ui/api/usage.csv",
        "/ui/api/nothing",
    ] {
        let r = c.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("log in"));
    }
    // The login page and the static files are open.
    let r = c.get(gw.url("/ui/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    assert!(r.text().await.unwrap().contains("name=\"password\""));
    let r = c.get(gw.url("/ui/assets/app.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    // A forged cookie is no session.
    let r = c
        .get(gw.url("/ui"))
        .header(COOKIE, "ferrolite_ui_session=v1.99999999999.abcd.ef01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn login_checks_the_password_and_the_origin_and_never_redirects_off_site() {
    let gw = TestGateway::start(CONFIG).await;
    let c = client();
    let form = |pw: &str, next: &str| format!("username=admin&password={pw}&next={next}");
    let r = c
        .post(gw.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("sk-wrong", "%2Fui"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert!(r.text().await.unwrap().contains("Wrong credentials"));
    // From another site: refused even with the right key.
    let r = c
        .post(gw.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "http://evil.example")
        .body(form(MASTER, "%2Fui"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get(SET_COOKIE).is_none());
    // Same origin, off-site `next`: lands on /ui.
    let host = gw.addr.to_string();
    let r = c
        .post(gw.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", format!("http://{host}"))
        .body(form(MASTER, "%2F%2Fevil.example%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/ui");
}

#[tokio::test]
async fn a_session_opens_the_pages_and_stands_for_the_master_key_with_csrf() {
    let gw = TestGateway::start(CONFIG).await;
    let c = client();
    let cookie = login(&gw, &c).await;
    let r = c
        .get(gw.url("/ui/keys"))
        .headers(with_cookie(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    let token = csrf(&gw, &c, &cookie).await;
    assert!(page.contains(&format!("<meta name=\"csrf-token\" content=\"{token}\">")));
    assert!(page.contains("aria-current=\"page\">Keys<"));

    // Reads through the session.
    let r = c
        .get(gw.url("/v1/models"))
        .headers(with_cookie(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        c.get(gw.url("/v1/models")).send().await.unwrap().status(),
        401
    );

    // A state-changing call needs the CSRF token.
    let body = json!({"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]});
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .headers(with_cookie(&cookie))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .headers(with_cookie(&cookie))
        .header("x-csrf-token", "0".repeat(64))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .headers(with_cookie(&cookie))
        .header("x-csrf-token", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "hi from the mock");

    // A key presented with the request wins over the cookie: a wrong one fails.
    let r = c
        .get(gw.url("/v1/models"))
        .headers(with_cookie(&cookie))
        .bearer_auth("sk-not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_models_api_shows_state_and_limits_but_no_secret() {
    let gw = TestGateway::start(CONFIG).await;
    let c = client();
    let cookie = login(&gw, &c).await;
    let r = c
        .get(gw.url("/ui/api/models"))
        .headers(with_cookie(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains("sk-upstream-secret"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["name"], "mock-chat");
    assert_eq!(groups[0]["deployments"][0]["mock"], true);
    let real = &groups[1]["deployments"][0];
    assert_eq!(real["state"], "healthy");
    assert_eq!(real["rpm_limit"], 60.0);
    assert_eq!(real["api_base"], "http://127.0.0.1:9/v1");
    assert_eq!(real["provider"], "openai");
    // Without a database the aggregates say so instead of failing.
    let v: Value = c
        .get(gw.url("/ui/api/overview"))
        .headers(with_cookie(&cookie))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["store"], false);
    assert_eq!(
        v["windows"]["hour"]["buckets"].as_array().unwrap().len(),
        60
    );
    assert_eq!(
        v["windows"]["month"]["buckets"].as_array().unwrap().len(),
        30
    );
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_the_session() {
    let gw = TestGateway::start(CONFIG).await;
    let c = client();
    let cookie = login(&gw, &c).await;
    let token = csrf(&gw, &c, &cookie).await;
    let form = |t: &str| format!("csrf={t}");
    let r = c
        .post(gw.url("/ui/logout"))
        .headers(with_cookie(&cookie))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("bad"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(gw.url("/ui/logout"))
        .headers(with_cookie(&cookie))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/ui/login");
    assert!(r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // The old cookie no longer works anywhere.
    let r = c
        .get(gw.url("/ui"))
        .headers(with_cookie(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = c
        .get(gw.url("/v1/models"))
        .headers(with_cookie(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_gateway_without_a_master_key_has_an_open_ui() {
    let gw = TestGateway::start(&format!("{CONFIG}\ngeneral_settings: {{}}\n")).await;
    let c = client();
    let r = c.get(gw.url("/ui")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(gw.url("/ui/login")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        c.get(gw.url("/ui/api/models"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Stored prompts (`store_prompts_in_spend_logs`) reach the Logs page only
/// in one call's detail, as JSON data that the page shows as text.
#[tokio::test]
async fn a_log_detail_carries_the_stored_content_and_the_list_does_not() {
    use admin_gateway::{AdminGateway, ADMIN_KEY};
    let store = std::sync::Arc::new(
        ferrolite_store::Store::connect("sqlite::memory:")
            .await
            .unwrap(),
    );
    let hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>";
    let mut row =
        ferrolite_store::SpendRow::new("req-ui-1".into(), String::new(), ferrolite_store::now_ms());
    row.messages = Some(json!([{"role": "user", "content": hostile}]).to_string());
    row.response =
        Some(json!({"choices": [{"message": {"content": "</pre><b>x</b>"}}]}).to_string());
    store.record_spend(&[row]).await.unwrap();
    let gw = AdminGateway::start_app(ferrolite_server::build_app, Some(store)).await;
    let c = client();
    let r = c
        .post(gw.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "username=admin&password={ADMIN_KEY}&next=%2Fui%2Flogs"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let get = |path: &'static str| {
        let c = c.clone();
        let url = gw.url(path);
        let cookie = cookie.clone();
        async move {
            let r = c
                .get(url)
                .headers(with_cookie(&cookie))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let list = get("/ui/api/logs").await;
    assert_eq!(list["logs"][0]["request_id"], "req-ui-1", "{list}");
    assert!(
        list["logs"][0]["messages"].is_null(),
        "lists carry no content: {list}"
    );
    let one = get("/ui/api/logs?request_id=req-ui-1&limit=1").await;
    assert_eq!(one["logs"][0]["messages"][0]["content"], hostile, "{one}");
    assert_eq!(
        one["logs"][0]["response"]["choices"][0]["message"]["content"],
        "</pre><b>x</b>"
    );
}

/// The page script builds DOM nodes and sets text; it never parses strings
/// as HTML (user content, stored prompts included, stays text).
#[test]
fn the_ui_script_never_parses_data_as_html() {
    let js = include_str!("../assets/ui/app.js");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "DOMParser",
        "createContextualFragment",
    ] {
        assert!(!js.contains(sink), "app.js uses {sink}");
    }
    for id in ["#log-messages", "#log-response"] {
        assert!(
            js.contains(&format!("$(\"{id}\").textContent = text(")),
            "{id} is set as text"
        );
    }
}
