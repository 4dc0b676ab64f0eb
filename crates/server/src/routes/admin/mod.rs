//! The management API, with LiteLLM's paths and JSON shapes: virtual keys
//! (`/key/*`), users (`/user/*`), teams (`/team/*`) and spend
//! (`/spend/logs`, `/global/spend*`). Every route here requires an admin
//! principal ([`require_admin`]).

mod keys;
mod render;
mod spend;
mod teams;
mod users;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Query, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferrolite_core::auth::Principal;
use ferrolite_core::GatewayError;
use ferrolite_store::{parse_duration, Store, StoreError};
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::response::ApiError;
use crate::state::AppState;

/// Add the management routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let admin = Router::new()
        .route("/key/generate", post(keys::generate))
        .route("/key/info", get(keys::info))
        .route("/key/update", post(keys::update))
        .route("/key/delete", post(keys::delete))
        .route("/key/list", get(keys::list))
        .route("/key/regenerate", post(keys::regenerate))
        .route("/key/{key}/regenerate", post(keys::regenerate_path))
        .route("/key/block", post(keys::block))
        .route("/key/unblock", post(keys::unblock))
        .route("/user/new", post(users::new))
        .route("/user/info", get(users::info))
        .route("/user/update", post(users::update))
        .route("/user/delete", post(users::delete))
        .route("/user/list", get(users::list))
        .route("/team/new", post(teams::new))
        .route("/team/info", get(teams::info))
        .route("/team/update", post(teams::update))
        .route("/team/delete", post(teams::delete))
        .route("/team/list", get(teams::list))
        .route("/team/member_add", post(teams::member_add))
        .route("/team/member_delete", post(teams::member_delete))
        .route("/spend/logs", get(spend::logs))
        .route("/global/spend", get(spend::global))
        .route("/global/spend/keys", get(spend::keys))
        .route("/global/spend/models", get(spend::models))
        .route_layer(middleware::from_fn(require_admin));
    r.merge(admin)
}

/// The hook deciding who may use the management API: a principal marked
/// `admin` by authentication (today: the master key, or any caller of a
/// gateway with no master key). Virtual-key authentication marks
/// `proxy_admin` keys as admin; every other key gets 403.
pub async fn require_admin(req: Request, next: Next) -> Response {
    let admin = req
        .extensions()
        .get::<Arc<Principal>>()
        .is_some_and(|p| p.admin);
    if admin {
        next.run(req).await
    } else {
        ApiError::from(GatewayError::Forbidden(format!(
            "Only proxy admin can be used to generate, delete, update info for keys/users/teams and read spend. Route={}",
            req.uri().path()
        )))
        .into_response()
    }
}

/// A key, user or team changed: the change takes effect at once on this
/// instance and, through Redis, within about a second on every other
/// (`hash`: the key's hash; `None`: forget every cached key).
fn keys_changed(state: &AppState, hash: Option<&str>) {
    if let Some(k) = &state.gw.keys {
        k.invalidate(hash);
    }
}

/// An error from a management handler (boxed: results stay small).
pub(super) struct AdminError(Box<GatewayError>);

impl From<GatewayError> for AdminError {
    fn from(e: GatewayError) -> Self {
        AdminError(Box::new(e))
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        ApiError::from(*self.0).into_response()
    }
}

type Res<T> = Result<T, AdminError>;

/// The store, or LiteLLM's answer when there is none.
fn store(state: &AppState) -> Res<&Store> {
    state
        .store
        .as_deref()
        .ok_or_else(|| GatewayError::bad_request("No connected db.").into())
}

/// A store error as the client sees it.
fn db_err(e: StoreError) -> AdminError {
    match e {
        StoreError::Conflict(m) => GatewayError::bad_request(m).into(),
        other => {
            tracing::error!("management API: {other}");
            GatewayError::Internal(other.to_string()).into()
        }
    }
}

fn bad(param: &str, message: impl Into<String>) -> AdminError {
    GatewayError::BadRequest {
        message: message.into(),
        param: Some(param.to_owned()),
    }
    .into()
}

fn not_found(message: impl Into<String>) -> AdminError {
    GatewayError::NotFound(message.into()).into()
}

/// Query parameters, with a 400 in the OpenAI shape on a bad one.
pub(super) struct Q<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Q(v))
            .map_err(|e| GatewayError::bad_request(e.body_text()).into())
    }
}

/// For update bodies: absent = leave unchanged (`None`), `null` = clear
/// (`Some(None)`), a value = set (`Some(Some(v))`).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A budget: finite and not negative.
fn check_budget(param: &str, v: Option<f64>) -> Res<()> {
    match v {
        Some(b) if !b.is_finite() || b < 0.0 => Err(bad(
            param,
            format!("{param} must be a non-negative number, got {b}"),
        )),
        _ => Ok(()),
    }
}

/// A limit (rpm, tpm, parallel requests): not negative.
fn check_limit(param: &str, v: Option<i64>) -> Res<()> {
    match v {
        Some(n) if n < 0 => Err(bad(
            param,
            format!("{param} must be a non-negative integer, got {n}"),
        )),
        _ => Ok(()),
    }
}

/// A LiteLLM duration (`30s`, `1h`, `30d`, `1mo`); `now + duration` in ms.
fn check_duration(param: &str, v: Option<&str>, now: i64) -> Res<Option<i64>> {
    match v {
        None => Ok(None),
        Some(d) => parse_duration(d)
            .map(|d| Some(d.after(now)))
            .map_err(|m| bad(param, format!("{param}: {m}"))),
    }
}

/// LiteLLM's roles for users and for team members.
const USER_ROLES: &[&str] = &[
    "proxy_admin",
    "proxy_admin_viewer",
    "org_admin",
    "internal_user",
    "internal_user_viewer",
    "team",
    "customer",
];
const MEMBER_ROLES: &[&str] = &["admin", "user"];

/// The store hash of a key given in clear (`sk-…`) or already hashed,
/// as LiteLLM accepts both.
fn token_of(key: &str) -> String {
    let k = key.trim();
    if k.starts_with("sk-") {
        ferrolite_store::hash_key(k)
    } else {
        k.to_ascii_lowercase()
    }
}

/// A new key like LiteLLM's: `sk-` and 22 URL-safe random characters.
fn new_secret_key() -> Res<String> {
    use ring::rand::SecureRandom;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 22];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| GatewayError::Internal("no system randomness for a new key".into()))?;
    let tail: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect();
    Ok(format!("sk-{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_look_like_litellm_keys() {
        let k = new_secret_key().ok().unwrap();
        assert_eq!(k.len(), 25);
        assert!(k.starts_with("sk-"));
        assert!(k[3..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(k, new_secret_key().ok().unwrap());
        assert_eq!(token_of(&k), ferrolite_store::hash_key(&k));
        assert_eq!(token_of("ABCDEF"), "abcdef");
    }
}
