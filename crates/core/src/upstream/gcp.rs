//! Google OAuth access tokens for Vertex AI, cached until shortly before they
//! expire.
//!
//! Three sources, picked from the deployment's credentials:
//! - a service account (`"type": "service_account"`): a JWT with the
//!   `cloud-platform` scope, signed RS256 with the account's key, exchanged
//!   at its `token_uri` (the `jwt-bearer` grant);
//! - a user's application-default credentials (`"type": "authorized_user"`):
//!   the `refresh_token` grant;
//! - no credentials: the GCE / GKE / Cloud Run metadata server (its host can
//!   be moved with `GCE_METADATA_HOST`, as Google's client libraries allow).
//!
//! Tokens are cached per credential (service account e-mail and token
//! endpoint, user client and refresh token, or metadata host). Concurrent
//! callers that find no fresh token wait for one refresh instead of each
//! starting their own. Errors never contain key material.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ferrolite_types::Secret;
use serde_json::Value;
use sha2::Digest;

use crate::config::GcpAuth;

/// The OAuth scope Vertex AI needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token endpoint, for credentials that do not name one.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The metadata server, unless `GCE_METADATA_HOST` says otherwise.
const METADATA_HOST: &str = "metadata.google.internal";
const METADATA_TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime asked for in the JWT (Google's maximum).
const JWT_LIFETIME: u64 = 3600;
/// A cached token is replaced this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Bound on one token request.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Token-endpoint error bodies are quoted up to this many characters.
const MAX_ERROR_TEXT: usize = 300;

struct Cached {
    token: Secret,
    expires_at: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// Cached tokens, one per credential.
#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<String, Slot>>,
}

/// A token just obtained: the token and its lifetime in seconds.
struct Fresh {
    token: Secret,
    expires_in: u64,
}

/// Where a credential's tokens come from.
enum Source {
    ServiceAccount {
        email: String,
        key_id: Option<String>,
        private_key: Secret,
        token_uri: String,
    },
    AuthorizedUser {
        client_id: String,
        client_secret: Secret,
        refresh_token: Secret,
        token_uri: String,
    },
    Metadata {
        base: String,
    },
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn required(v: &Value, key: &str, kind: &str) -> Result<String, String> {
    field(v, key)
        .map(str::to_owned)
        .ok_or_else(|| format!("the {kind} credentials have no `{key}`"))
}

/// The metadata server's base URL for a `GCE_METADATA_HOST` value.
fn metadata_base(host: Option<&str>) -> String {
    let host = host
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or(METADATA_HOST)
        .trim_end_matches('/');
    if host.starts_with("http://") || host.starts_with("https://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    }
}

impl Source {
    fn from_auth(auth: &GcpAuth) -> Result<Self, String> {
        let Some(creds) = &auth.credentials else {
            let host = std::env::var("GCE_METADATA_HOST").ok();
            return Ok(Source::Metadata {
                base: metadata_base(host.as_deref()),
            });
        };
        Self::from_json(creds.expose())
    }

    fn from_json(text: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|_| "the Google credentials are not valid JSON".to_owned())?;
        match field(&v, "type") {
            Some("service_account") => {
                let kind = "service account";
                Ok(Source::ServiceAccount {
                    email: required(&v, "client_email", kind)?,
                    key_id: field(&v, "private_key_id").map(str::to_owned),
                    private_key: Secret::new(required(&v, "private_key", kind)?),
                    token_uri: field(&v, "token_uri")
                        .unwrap_or(DEFAULT_TOKEN_URI)
                        .to_owned(),
                })
            }
            Some("authorized_user") => {
                let kind = "authorized_user";
                Ok(Source::AuthorizedUser {
                    client_id: required(&v, "client_id", kind)?,
                    client_secret: Secret::new(required(&v, "client_secret", kind)?),
                    refresh_token: Secret::new(required(&v, "refresh_token", kind)?),
                    token_uri: field(&v, "token_uri")
                        .unwrap_or(DEFAULT_TOKEN_URI)
                        .to_owned(),
                })
            }
            Some(other) => Err(format!(
                "unsupported Google credential type `{other}`: use a service account key (type service_account), user credentials (type authorized_user), or none for the metadata server"
            )),
            None => Err("the Google credentials have no `type`".to_owned()),
        }
    }

    /// One cache entry per identity and token endpoint.
    fn cache_key(&self) -> String {
        match self {
            Source::ServiceAccount {
                email, token_uri, ..
            } => format!("sa\n{email}\n{token_uri}"),
            Source::AuthorizedUser {
                client_id,
                refresh_token,
                token_uri,
                ..
            } => {
                // The refresh token identifies the user; keep only its hash.
                let digest = sha2::Sha256::digest(refresh_token.expose().as_bytes());
                format!("user\n{client_id}\n{}\n{token_uri}", hex::encode(digest))
            }
            Source::Metadata { base } => format!("metadata\n{base}"),
        }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<Fresh, String> {
        let (what, request) = match self {
            Source::ServiceAccount {
                email,
                key_id,
                private_key,
                token_uri,
            } => {
                let jwt = signed_jwt(
                    email,
                    key_id.as_deref(),
                    private_key.expose(),
                    token_uri,
                    unix_now(),
                )?;
                let body = format!(
                    "grant_type={}&assertion={}",
                    form_encode(JWT_BEARER_GRANT),
                    form_encode(&jwt)
                );
                (
                    format!("the Google token endpoint {token_uri}"),
                    form_post(http, token_uri, body),
                )
            }
            Source::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => {
                let body = format!(
                    "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
                    form_encode(client_id),
                    form_encode(client_secret.expose()),
                    form_encode(refresh_token.expose())
                );
                (
                    format!("the Google token endpoint {token_uri}"),
                    form_post(http, token_uri, body),
                )
            }
            Source::Metadata { base } => (
                format!("the metadata server {base}"),
                http.get(format!("{base}{METADATA_TOKEN_PATH}"))
                    .header("Metadata-Flavor", "Google"),
            ),
        };
        let resp = request.timeout(TOKEN_TIMEOUT).send().await.map_err(|e| {
            format!(
                "cannot get a Google access token from {what}: {}",
                cause(&e)
            )
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("cannot read the access token from {what}: {}", cause(&e)))?;
        parse_token_response(status, &body, &what)
    }
}

fn form_post(http: &reqwest::Client, url: &str, body: String) -> reqwest::RequestBuilder {
    http.post(url)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
}

/// The innermost cause of a reqwest error ("Connection refused").
fn cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    msg
}

/// `application/x-www-form-urlencoded` value encoding.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An OAuth token answer (`{"access_token", "expires_in", "token_type"}`),
/// or the endpoint's error (`{"error", "error_description"}`) as a message.
fn parse_token_response(status: u16, body: &[u8], what: &str) -> Result<Fresh, String> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        let detail = parsed
            .as_ref()
            .and_then(|v| {
                let err = v.get("error")?;
                // Google's OAuth errors: a code and a description. Other
                // Google APIs: an `error` object with a `message`.
                let code = err.as_str().or_else(|| err.get("status")?.as_str());
                let desc = v
                    .get("error_description")
                    .and_then(Value::as_str)
                    .or_else(|| err.get("message")?.as_str());
                match (code, desc) {
                    (Some(c), Some(d)) => Some(format!("{c}: {d}")),
                    (Some(c), None) => Some(c.to_owned()),
                    (None, Some(d)) => Some(d.to_owned()),
                    (None, None) => None,
                }
            })
            .unwrap_or_else(|| {
                let text: String = String::from_utf8_lossy(body)
                    .chars()
                    .take(MAX_ERROR_TEXT)
                    .collect();
                let text = text.trim().to_owned();
                if text.is_empty() {
                    "empty body".to_owned()
                } else {
                    text
                }
            });
        return Err(format!(
            "{what} refused to issue an access token (HTTP {status}): {detail}"
        ));
    }
    let v = parsed.ok_or_else(|| format!("{what} answered with a body that is not JSON"))?;
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("{what} answered without an access_token"))?;
    // `expires_in` is a number, though some proxies send a string; without
    // one, assume Google's usual hour.
    let expires_in = match v.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(JWT_LIFETIME),
        _ => JWT_LIFETIME,
    };
    Ok(Fresh {
        token: Secret::new(token),
        expires_in,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The DER bytes of a PEM private key, and whether it is PKCS#8 (`PRIVATE
/// KEY`) rather than PKCS#1 (`RSA PRIVATE KEY`).
fn pem_der(pem: &str) -> Result<(Vec<u8>, bool), String> {
    const BAD: &str = "the service account's private_key is not a PEM private key";
    let (label, rest) = if let Some(i) = pem.find("-----BEGIN PRIVATE KEY-----") {
        (
            "PRIVATE KEY",
            &pem[i + "-----BEGIN PRIVATE KEY-----".len()..],
        )
    } else if let Some(i) = pem.find("-----BEGIN RSA PRIVATE KEY-----") {
        (
            "RSA PRIVATE KEY",
            &pem[i + "-----BEGIN RSA PRIVATE KEY-----".len()..],
        )
    } else {
        return Err(BAD.to_owned());
    };
    let end = rest
        .find(&format!("-----END {label}-----"))
        .ok_or_else(|| BAD.to_owned())?;
    let b64: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| BAD.to_owned())?;
    Ok((der, label == "PRIVATE KEY"))
}

fn rsa_key(pem: &str) -> Result<ring::signature::RsaKeyPair, String> {
    let (der, pkcs8) = pem_der(pem)?;
    let key = if pkcs8 {
        ring::signature::RsaKeyPair::from_pkcs8(&der)
    } else {
        ring::signature::RsaKeyPair::from_der(&der)
    };
    key.map_err(|e| format!("the service account's private_key is not a usable RSA key ({e})"))
}

/// The signed JWT a service account exchanges for an access token.
fn signed_jwt(
    email: &str,
    key_id: Option<&str>,
    private_key: &str,
    token_uri: &str,
    iat: u64,
) -> Result<String, String> {
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = Value::String(kid.to_owned());
    }
    let claims = serde_json::json!({
        "iss": email,
        "scope": SCOPE,
        "aud": token_uri,
        "iat": iat,
        "exp": iat + JWT_LIFETIME,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let key = rsa_key(private_key)?;
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "cannot sign the service account JWT".to_owned())?;
    Ok(format!("{signing_input}.{}", b64url(&sig)))
}

impl TokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A valid access token for `auth`, fetched or refreshed when needed.
    pub async fn token(&self, http: &reqwest::Client, auth: &GcpAuth) -> Result<Secret, String> {
        let source = Source::from_auth(auth)?;
        self.get_or_fetch(&source.cache_key(), Instant::now, || source.fetch(http))
            .await
    }

    /// Drop the cached token for `auth`, so the next call fetches a new one
    /// (for a sender that saw Vertex reject the token with a 401).
    pub fn forget(&self, auth: &GcpAuth) {
        if let Ok(source) = Source::from_auth(auth) {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.remove(&source.cache_key());
        }
    }

    fn slot(&self, key: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match slots.get(key) {
            Some(s) => s.clone(),
            None => {
                let s = Slot::default();
                slots.insert(key.to_owned(), s.clone());
                s
            }
        }
    }

    /// The cached token under `key` if it is good for longer than the
    /// refresh margin, else a fresh one from `fetch` (which is then cached).
    /// Callers of the same key wait for each other, so one refresh serves
    /// them all. `now` is the clock (injectable for tests).
    async fn get_or_fetch<C, F, Fut>(&self, key: &str, now: C, fetch: F) -> Result<Secret, String>
    where
        C: Fn() -> Instant,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fresh, String>>,
    {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref() {
            if c.expires_at > now() + REFRESH_MARGIN {
                return Ok(c.token.clone());
            }
        }
        let asked = now();
        let fresh = fetch().await?;
        *cached = Some(Cached {
            token: fresh.token.clone(),
            expires_at: asked + Duration::from_secs(fresh.expires_in),
        });
        Ok(fresh.token)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// The throwaway test key the mock Vertex server's service accounts use.
    const TEST_KEY: &str = ferrolite_testkit::vertex::TEST_PRIVATE_KEY;

    fn b64_json(part: &str) -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn jwt_has_the_claims_google_expects_and_a_valid_signature() {
        let jwt = signed_jwt(
            "svc@proj.iam.gserviceaccount.com",
            Some("kid-1"),
            TEST_KEY,
            "https://oauth2.googleapis.com/token",
            1_700_000_000,
        )
        .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = b64_json(parts[0]);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], "kid-1");
        let claims = b64_json(parts[1]);
        assert_eq!(claims["iss"], "svc@proj.iam.gserviceaccount.com");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["iat"], 1_700_000_000u64);
        assert_eq!(claims["exp"], 1_700_003_600u64);

        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[2])
            .unwrap();
        let key = rsa_key(TEST_KEY).unwrap();
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            ring::signature::KeyPair::public_key(&key).as_ref().to_vec(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        public.verify(signed.as_bytes(), &sig).unwrap();
        assert!(public.verify(b"something else", &sig).is_err());
    }

    #[test]
    fn bad_keys_give_errors_without_key_material() {
        let garbage =
            "-----BEGIN PRIVATE KEY-----\nQUJDREVGR0hJSktMTU5PUA==\n-----END PRIVATE KEY-----\n";
        let err = signed_jwt("a@b", None, garbage, DEFAULT_TOKEN_URI, 1).unwrap_err();
        assert!(err.contains("not a usable RSA key"), "{err}");
        assert!(!err.contains("QUJDREVG"), "{err}");
        let err = signed_jwt("a@b", None, "not a pem", DEFAULT_TOKEN_URI, 1).unwrap_err();
        assert!(err.contains("not a PEM private key"), "{err}");
        assert!(!err.contains("not a pem"), "{err}");
    }

    #[test]
    fn credential_types() {
        let sa = serde_json::json!({
            "type": "service_account", "client_email": "svc@p.iam", "private_key": TEST_KEY,
            "project_id": "p"
        });
        let s = Source::from_json(&sa.to_string()).unwrap();
        assert!(
            matches!(&s, Source::ServiceAccount { token_uri, .. } if token_uri == DEFAULT_TOKEN_URI)
        );
        assert_eq!(s.cache_key(), format!("sa\nsvc@p.iam\n{DEFAULT_TOKEN_URI}"));

        let user = serde_json::json!({
            "type": "authorized_user", "client_id": "cid", "client_secret": "cs",
            "refresh_token": "1//very-secret"
        });
        let u = Source::from_json(&user.to_string()).unwrap();
        assert!(matches!(u, Source::AuthorizedUser { .. }));
        assert!(!u.cache_key().contains("very-secret"));

        let err = Source::from_json(r#"{"type":"service_account","private_key":"k"}"#)
            .err()
            .unwrap();
        assert!(err.contains("client_email"), "{err}");
        let err = Source::from_json(r#"{"type":"external_account"}"#)
            .err()
            .unwrap();
        assert!(err.contains("unsupported Google credential type"), "{err}");
        let err = Source::from_json("{not json").err().unwrap();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn metadata_host_override() {
        assert_eq!(metadata_base(None), "http://metadata.google.internal");
        assert_eq!(
            metadata_base(Some("127.0.0.1:8080")),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            metadata_base(Some("http://127.0.0.1:8080/")),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode(JWT_BEARER_GRANT),
            "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        );
        assert_eq!(form_encode("a b/+=_-.~"), "a%20b%2F%2B%3D_-.~");
    }

    #[test]
    fn token_answers_and_errors() {
        let ok = parse_token_response(
            200,
            br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
            "t",
        )
        .unwrap();
        assert_eq!(ok.token.expose(), "ya29.x");
        assert_eq!(ok.expires_in, 3599);

        let err = parse_token_response(
            400,
            br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
            "the Google token endpoint X",
        )
        .err()
        .unwrap();
        assert_eq!(
            err,
            "the Google token endpoint X refused to issue an access token (HTTP 400): invalid_grant: Invalid JWT Signature."
        );
        let err = parse_token_response(404, b"Not Found\n", "the metadata server M")
            .err()
            .unwrap();
        assert!(err.ends_with("(HTTP 404): Not Found"), "{err}");
        let err = parse_token_response(200, br#"{"token_type":"Bearer"}"#, "t")
            .err()
            .unwrap();
        assert!(err.contains("without an access_token"), "{err}");
        let err = parse_token_response(200, b"<html>", "t").err().unwrap();
        assert!(err.contains("not JSON"), "{err}");
    }

    fn fresh(token: &str, expires_in: u64) -> Result<Fresh, String> {
        Ok(Fresh {
            token: Secret::new(token),
            expires_in,
        })
    }

    #[tokio::test]
    async fn tokens_are_reused_until_the_refresh_margin() {
        let cache = TokenCache::new();
        let calls = AtomicUsize::new(0);
        let start = Instant::now();
        let fetch = || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            fresh(&format!("tok-{n}"), 3600)
        };
        let t = cache.get_or_fetch("k", || start, fetch).await.unwrap();
        assert_eq!(t.expose(), "tok-1");
        // 54 minutes later: still more than 5 minutes left.
        let later = start + Duration::from_secs(54 * 60);
        let t = cache.get_or_fetch("k", || later, fetch).await.unwrap();
        assert_eq!(t.expose(), "tok-1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // 56 minutes later: within the margin, refreshed.
        let later = start + Duration::from_secs(56 * 60);
        let t = cache.get_or_fetch("k", || later, fetch).await.unwrap();
        assert_eq!(t.expose(), "tok-2");
        // Another credential has its own entry.
        let t = cache.get_or_fetch("other", || later, fetch).await.unwrap();
        assert_eq!(t.expose(), "tok-3");
        let t = cache.get_or_fetch("k", || later, fetch).await.unwrap();
        assert_eq!(t.expose(), "tok-2");
    }

    #[tokio::test]
    async fn short_lived_tokens_are_not_cached_and_errors_are_not_cached() {
        let cache = TokenCache::new();
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            fresh("short", 120)
        };
        cache.get_or_fetch("k", Instant::now, fetch).await.unwrap();
        cache.get_or_fetch("k", Instant::now, fetch).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let failing = || async { Err::<Fresh, _>("boom".to_owned()) };
        let err = cache
            .get_or_fetch("e", Instant::now, failing)
            .await
            .unwrap_err();
        assert_eq!(err, "boom");
        let t = cache
            .get_or_fetch("e", Instant::now, || async { fresh("ok", 3600) })
            .await
            .unwrap();
        assert_eq!(t.expose(), "ok");
    }

    #[tokio::test]
    async fn forgotten_tokens_are_fetched_again() {
        let cache = TokenCache::new();
        let auth = GcpAuth {
            credentials: Some(Secret::new(
                serde_json::json!({"type": "service_account", "client_email": "svc@p.iam", "private_key": TEST_KEY})
                    .to_string(),
            )),
            project: "p".into(),
            location: "us-central1".into(),
        };
        let key = Source::from_auth(&auth).unwrap().cache_key();
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            fresh(&format!("tok-{n}"), 3600)
        };
        cache.get_or_fetch(&key, Instant::now, fetch).await.unwrap();
        cache.forget(&auth);
        let t = cache.get_or_fetch(&key, Instant::now, fetch).await.unwrap();
        assert_eq!(t.expose(), "tok-2");
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_refresh() {
        let cache = Arc::new(TokenCache::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let cache = cache.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_fetch("k", Instant::now, || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        fresh("shared", 3600)
                    })
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().expose(), "shared");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
