//! The management API over HTTP, on an in-memory SQLite store: the key
//! lifecycle, users, teams and members, spend, bad input and access.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/admin_gateway.rs"]
mod admin_gateway;

use std::sync::Arc;

use admin_gateway::{AdminGateway, ADMIN_KEY};
use axum::extract::Request;
use axum::middleware::{self, Next};
use ferrolite_core::auth::Principal;
use ferrolite_store::{hash_key, parse_time, SpendRow};
use serde_json::{json, Value};

fn msg(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn key_lifecycle() {
    let g = AdminGateway::start().await;
    let (st, v) = g
        .post(
            "/key/generate",
            json!({"models": ["gpt"], "max_budget": 10.0, "budget_duration": "30d", "duration": "1h",
                   "key_alias": "ci", "metadata": {"owner": "x"}, "rpm_limit": 5, "tags": ["t1"]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-") && key.len() == 25, "{key}");
    let hash = hash_key(&key);
    assert_eq!(v["token"], hash.as_str());
    assert_eq!(v["key_name"], format!("sk-...{}", &key[21..]).as_str());
    assert_eq!(v["metadata"], json!({"owner": "x", "tags": ["t1"]}));
    assert!(
        v["budget_reset_at"].is_string() && v["expires"].is_string(),
        "{v}"
    );
    // Only the hash is stored.
    let stored = g.store.get_key(&hash).await.unwrap().unwrap();
    assert_ne!(stored.key_name, key);
    assert!(g.store.get_key(&key).await.unwrap().is_none());

    // Info by the key and by its hash.
    for k in [key.as_str(), hash.as_str()] {
        let (st, v) = g.get(&format!("/key/info?key={k}")).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["key"], k);
        assert_eq!(
            (
                v["info"]["max_budget"].as_f64(),
                v["info"]["spend"].as_f64()
            ),
            (Some(10.0), Some(0.0))
        );
        assert_eq!(v["info"]["models"], json!(["gpt"]));
    }

    // Update: null clears, absent fields stay.
    let (st, v) = g
        .post(
            "/key/update",
            json!({"key": key, "max_budget": null, "models": ["a", "b"], "rpm_limit": 7}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = g.get(&format!("/key/info?key={key}")).await;
    let info = &v["info"];
    assert_eq!(
        (info["max_budget"].clone(), info["rpm_limit"].as_i64()),
        (Value::Null, Some(7))
    );
    assert_eq!(
        (info["models"].clone(), info["key_alias"].clone()),
        (json!(["a", "b"]), json!("ci"))
    );
    assert_eq!(info["budget_duration"], "30d");

    // Block and unblock.
    let (st, v) = g.post("/key/block", json!({"key": key})).await;
    assert_eq!((st, v["blocked"].as_bool()), (200, Some(true)), "{v}");
    assert!(g.store.get_key(&hash).await.unwrap().unwrap().blocked);
    let (st, v) = g.post("/key/unblock", json!({"key": hash})).await;
    assert_eq!((st, v["blocked"].as_bool()), (200, Some(false)), "{v}");

    // List with filters, hashes or full objects.
    g.post(
        "/key/generate",
        json!({"key_alias": "other", "user_id": "u9"}),
    )
    .await;
    let (_, v) = g.get("/key/list?key_alias=ci").await;
    assert_eq!(
        (v["keys"].clone(), v["total_count"].as_i64()),
        (json!([hash]), Some(1))
    );
    let (_, v) = g
        .get("/key/list?page=1&size=1&return_full_object=true")
        .await;
    assert_eq!(
        (
            v["total_count"].as_i64(),
            v["total_pages"].as_i64(),
            v["current_page"].as_i64()
        ),
        (Some(2), Some(2), Some(1))
    );
    assert_eq!(v["keys"][0]["key_alias"], "ci");
    let (_, v) = g.get("/key/list?user_id=u9").await;
    assert_eq!(v["total_count"], 1);

    // Regenerate: new key, same record; the old key is gone.
    let (st, v) = g.post("/key/regenerate", json!({"key": key})).await;
    assert_eq!(st, 200, "{v}");
    let key2 = v["key"].as_str().unwrap().to_owned();
    assert_ne!(key2, key);
    assert_eq!(
        (v["key_alias"].clone(), v["token"].clone()),
        (json!("ci"), json!(hash_key(&key2)))
    );
    assert_eq!(g.get(&format!("/key/info?key={key}")).await.0, 404);
    // The path form, with an empty body.
    let r = g
        .http
        .post(g.url(&format!("/key/{key2}/regenerate")))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let key3 = v["key"].as_str().unwrap().to_owned();
    assert_eq!(g.get(&format!("/key/info?key={key3}")).await.0, 200);

    // Delete by key, then by alias.
    let (st, v) = g.post("/key/delete", json!({"keys": [key3]})).await;
    assert_eq!((st, v["deleted_keys"].clone()), (200, json!([key3])), "{v}");
    assert_eq!(g.get(&format!("/key/info?key={key3}")).await.0, 404);
    let (st, _) = g
        .post("/key/delete", json!({"key_aliases": ["other"]}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(g.get("/key/list").await.1["total_count"], 0);
    let (st, v) = g
        .post("/key/delete", json!({"keys": ["sk-nope-nope"]}))
        .await;
    assert_eq!(st, 404, "{v}");
}

#[tokio::test]
async fn users() {
    let g = AdminGateway::start().await;
    let (st, v) = g
        .post("/user/new", json!({"user_id": "u1", "user_email": "u1@example.com", "max_budget": 5, "models": ["gpt"]}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["user_role"].clone(), v["max_budget"].as_f64()),
        (json!("internal_user"), Some(5.0))
    );
    let key = v["key"].as_str().unwrap().to_owned();
    let k = g.store.get_key(&hash_key(&key)).await.unwrap().unwrap();
    assert_eq!(
        (k.user_id.as_deref(), k.models.clone()),
        (Some("u1"), vec!["gpt".to_owned()])
    );
    assert_eq!(g.post("/user/new", json!({"user_id": "u1"})).await.0, 400);
    let (st, v) = g
        .post(
            "/user/new",
            json!({"user_id": "u2", "auto_create_key": false, "user_role": "proxy_admin"}),
        )
        .await;
    assert_eq!((st, v.get("key")), (200, None), "{v}");

    let (st, v) = g.get("/user/info?user_id=u1").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (
            v["user_info"]["user_email"].clone(),
            v["keys"].as_array().unwrap().len()
        ),
        (json!("u1@example.com"), 1)
    );

    let (st, v) = g
        .post(
            "/user/update",
            json!({"user_id": "u1", "user_email": null, "tpm_limit": 100}),
        )
        .await;
    assert_eq!(
        (st, v["user_email"].clone(), v["tpm_limit"].as_i64()),
        (200, Value::Null, Some(100)),
        "{v}"
    );
    assert_eq!(v["max_budget"], 5.0);

    let (_, v) = g.get("/user/list?page_size=1").await;
    assert_eq!(
        (
            v["total"].as_i64(),
            v["total_pages"].as_i64(),
            v["users"].as_array().unwrap().len()
        ),
        (Some(2), Some(2), 1)
    );
    let (_, v) = g.get("/user/list?role=proxy_admin").await;
    assert_eq!(v["users"][0]["user_id"], "u2");

    // Deleting a user deletes its keys.
    let (st, v) = g.post("/user/delete", json!({"user_ids": ["u1"]})).await;
    assert_eq!(
        (st, v["deleted_users"].clone()),
        (200, json!(["u1"])),
        "{v}"
    );
    assert!(g.store.get_key(&hash_key(&key)).await.unwrap().is_none());
    assert_eq!(g.get("/user/info?user_id=u1").await.0, 404);
    assert_eq!(
        g.post("/user/delete", json!({"user_ids": ["u1"]})).await.0,
        404
    );
}

#[tokio::test]
async fn teams_and_members() {
    let g = AdminGateway::start().await;
    let (st, v) = g
        .post(
            "/team/new",
            json!({"team_id": "t1", "team_alias": "One", "members_with_roles": [{"user_id": "lead", "role": "admin"}],
                   "models": ["gpt"], "max_budget": 100, "budget_duration": "1mo", "rpm_limit": 60}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["admins"].clone(), v["budget_reset_at"].is_string()),
        (json!(["lead"]), true),
        "{v}"
    );
    assert!(
        g.store.get_user("lead").await.unwrap().is_some(),
        "members are users"
    );
    assert_eq!(g.post("/team/new", json!({"team_id": "t1"})).await.0, 400);

    let (st, v) = g
        .post(
            "/team/member_add",
            json!({"team_id": "t1", "member": {"user_id": "u2"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["members_with_roles"],
        json!([{"user_id": "lead", "role": "admin"}, {"user_id": "u2", "role": "user"}])
    );
    assert_eq!(v["updated_users"][0]["user_id"], "u2");
    let (st, v) = g
        .post(
            "/team/member_add",
            json!({"team_id": "t1", "member": [{"user_id": "u2"}]}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(msg(&v).contains("already a member"), "{v}");
    let (st, _) = g
        .post(
            "/team/member_add",
            json!({"team_id": "nope", "member": {"user_id": "u2"}}),
        )
        .await;
    assert_eq!(st, 404);
    let (st, v) = g
        .post(
            "/team/member_add",
            json!({"team_id": "t1", "member": {"user_id": "u3", "role": "owner"}}),
        )
        .await;
    assert_eq!(st, 400, "{v}");

    // Keys of a team; an unknown team is refused.
    let (st, v) = g.post("/key/generate", json!({"team_id": "t1"})).await;
    assert_eq!(st, 200, "{v}");
    let team_key = v["key"].as_str().unwrap().to_owned();
    let (st, v) = g.post("/key/generate", json!({"team_id": "ghost"})).await;
    assert_eq!(
        (st, v["error"]["param"].clone()),
        (400, json!("team_id")),
        "{v}"
    );

    let (st, v) = g.get("/team/info?team_id=t1").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (
            v["team_info"]["team_alias"].clone(),
            v["keys"].as_array().unwrap().len()
        ),
        (json!("One"), 1)
    );

    let (st, v) = g
        .post(
            "/team/update",
            json!({"team_id": "t1", "max_budget": 50, "team_alias": null, "blocked": true}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (
            v["max_budget"].as_f64(),
            v["team_alias"].clone(),
            v["blocked"].clone()
        ),
        (Some(50.0), Value::Null, json!(true))
    );
    assert_eq!(
        v["members_with_roles"].as_array().unwrap().len(),
        2,
        "update keeps members"
    );

    let (st, v) = g
        .post(
            "/team/member_delete",
            json!({"team_id": "t1", "user_id": "u2"}),
        )
        .await;
    assert_eq!((st, v["members"].clone()), (200, json!(["lead"])), "{v}");
    assert_eq!(
        g.post(
            "/team/member_delete",
            json!({"team_id": "t1", "user_id": "u2"})
        )
        .await
        .0,
        400
    );

    g.post(
        "/team/new",
        json!({"team_id": "t2", "members_with_roles": [{"user_id": "u2"}]}),
    )
    .await;
    let (_, v) = g.get("/team/list").await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = g.get("/team/list?user_id=u2").await;
    assert_eq!(v[0]["team_id"], "t2");

    // Deleting a team deletes its keys.
    let (st, v) = g.post("/team/delete", json!({"team_ids": ["t1"]})).await;
    assert_eq!(
        (st, v["deleted_teams"].clone()),
        (200, json!(["t1"])),
        "{v}"
    );
    assert!(g
        .store
        .get_key(&hash_key(&team_key))
        .await
        .unwrap()
        .is_none());
    assert_eq!(g.get("/team/info?team_id=t1").await.0, 404);
}

#[tokio::test]
async fn spend_endpoints() {
    let g = AdminGateway::start().await;
    let (_, v) = g
        .post("/key/generate", json!({"key_alias": "a", "user_id": "u1"}))
        .await;
    let key = v["key"].as_str().unwrap().to_owned();
    let token = hash_key(&key);
    let day1 = parse_time("2025-05-01T10:00:00Z").unwrap();
    let day2 = parse_time("2025-05-02T10:00:00Z").unwrap();
    let mut rows = Vec::new();
    for (id, tok, at, group, spend) in [
        ("r1", token.as_str(), day1, "gpt", 0.5),
        ("r2", token.as_str(), day2, "claude", 1.5),
        ("r3", "", day2, "gpt", 2.0),
    ] {
        let mut r = SpendRow::new(id.into(), tok.into(), at);
        r.model_group = group.into();
        r.spend = spend;
        r.total_tokens = 10;
        r.user = (!tok.is_empty()).then(|| "u1".to_owned());
        rows.push(r);
    }
    g.store.record_spend(&rows).await.unwrap();

    let (st, v) = g.get(&format!("/spend/logs?api_key={key}")).await;
    assert_eq!(st, 200, "{v}");
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r2", "r1"]);
    assert_eq!(v[0]["startTime"], "2025-05-02T10:00:00.000Z");
    assert_eq!(
        (v[0]["user"].clone(), v[0]["model_group"].clone()),
        (json!("u1"), json!("claude"))
    );
    let (_, v) = g.get("/spend/logs?request_id=r3").await;
    assert_eq!(
        (v.as_array().unwrap().len(), v[0]["spend"].as_f64()),
        (1, Some(2.0))
    );
    let (_, v) = g
        .get("/spend/logs?user_id=u1&start_date=2025-05-01&end_date=2025-05-01")
        .await;
    assert_eq!(
        v.as_array().unwrap().len(),
        1,
        "the end day is included, the next is not"
    );

    let (_, v) = g.get("/global/spend").await;
    assert_eq!(v["spend"].as_f64(), Some(4.0));
    let (_, v) = g.get("/global/spend?start_date=2025-05-02").await;
    assert_eq!(v["spend"].as_f64(), Some(3.5));
    let (_, v) = g.get("/global/spend/keys").await;
    assert_eq!(
        (
            v[0]["api_key"].clone(),
            v[0]["total_spend"].as_f64(),
            v[0]["key_alias"].clone()
        ),
        (json!(token), Some(2.0), json!("a"))
    );
    let (_, v) = g.get("/global/spend/models?limit=1").await;
    assert_eq!(
        v,
        json!([{"model": "gpt", "total_spend": 2.5, "requests": 2, "total_tokens": 20}])
    );
    let (_, v) = g.get(&format!("/key/info?key={key}")).await;
    assert_eq!(v["info"]["spend"].as_f64(), Some(2.0));
}

#[tokio::test]
async fn bad_input_is_a_clear_400_or_404() {
    let g = AdminGateway::start().await;
    let cases: &[(&str, Value, &str)] = &[
        ("/key/generate", json!({"max_budget": -1}), "max_budget"),
        ("/key/generate", json!({"max_budget": "ten"}), "max_budget"),
        (
            "/key/generate",
            json!({"budget_duration": "3 weeks"}),
            "budget_duration",
        ),
        ("/key/generate", json!({"duration": "0d"}), "duration"),
        ("/key/generate", json!({"rpm_limit": -5}), "rpm_limit"),
        ("/key/generate", json!({"modles": ["gpt"]}), "modles"),
        ("/key/generate", json!({"key": "not-a-sk-key"}), "key"),
        ("/key/update", json!({"max_budget": 1}), "key"),
        ("/user/new", json!({"user_role": "emperor"}), "user_role"),
        ("/team/new", json!({"max_budget": -0.5}), "max_budget"),
        (
            "/team/new",
            json!({"members_with_roles": [{"role": "admin"}]}),
            "members_with_roles[0]",
        ),
    ];
    for (path, body, field) in cases {
        let (st, v) = g.post(path, body.clone()).await;
        assert_eq!(st, 400, "{path} {body}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        let m = msg(&v);
        assert!(
            m.contains(field) || v["error"]["param"] == *field,
            "{path} {body}: {v}"
        );
    }
    let (st, v) = g.post_raw("/key/generate", "{not json").await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = g.post("/key/generate", json!({"key_alias": "dup"})).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = g.post("/key/generate", json!({"key_alias": "dup"})).await;
    assert_eq!(st, 400, "{v}");
    assert!(msg(&v).contains("dup"), "{v}");

    for path in [
        "/key/info?key=sk-unknown-key",
        "/user/info?user_id=nobody",
        "/team/info?team_id=none",
    ] {
        let (st, v) = g.get(path).await;
        assert_eq!(
            (st, v["error"]["type"].clone()),
            (404, json!("not_found_error")),
            "{path}: {v}"
        );
    }
    assert_eq!(
        g.post("/key/update", json!({"key": "sk-unknown-key"}))
            .await
            .0,
        404
    );
    assert_eq!(
        g.post("/key/block", json!({"key": "sk-unknown-key"}))
            .await
            .0,
        404
    );
    assert_eq!(
        g.post("/key/regenerate", json!({"key": "sk-unknown-key"}))
            .await
            .0,
        404
    );
    assert_eq!(
        g.post("/user/update", json!({"user_id": "nobody"})).await.0,
        404
    );
    assert_eq!(
        g.post("/team/update", json!({"team_id": "none"})).await.0,
        404
    );
    assert_eq!(g.get("/key/info").await.0, 400);
    assert_eq!(g.get("/key/list?page=zero").await.0, 400);
    assert_eq!(g.get("/key/list?colour=red").await.0, 400);
    assert_eq!(g.get("/spend/logs?start_date=yesterday").await.0, 400);
    assert_eq!(
        g.get("/spend/logs?start_date=2025-02-01&end_date=2025-01-01")
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn access_requires_the_master_key() {
    let g = AdminGateway::start().await;
    assert_eq!(g.get_as(None, "/key/list").await.0, 401);
    assert_eq!(g.get_as(Some("sk-wrong-key"), "/key/list").await.0, 401);
    assert_eq!(g.get_as(Some(ADMIN_KEY), "/key/list").await.0, 200);

    // The admin hook: an authenticated principal that is not an admin gets 403.
    async fn not_admin(mut req: Request, next: Next) -> axum::response::Response {
        req.extensions_mut().insert(Arc::new(Principal {
            admin: false,
            ..Default::default()
        }));
        next.run(req).await
    }
    let g = AdminGateway::start_app(
        |st| {
            ferrolite_server::routes::admin::routes(axum::Router::new())
                .layer(middleware::from_fn(not_admin))
                .with_state(st)
        },
        None,
    )
    .await;
    let (st, v) = g.get("/key/list").await;
    assert_eq!(
        (st, v["error"]["type"].clone()),
        (403, json!("permission_error")),
        "{v}"
    );
    assert_eq!(g.post("/key/generate", json!({})).await.0, 403);

    // No store: LiteLLM's answer.
    let g = AdminGateway::start_without_store().await;
    let (st, v) = g.post("/key/generate", json!({})).await;
    assert_eq!((st, msg(&v)), (400, "No connected db.".to_owned()), "{v}");
}
