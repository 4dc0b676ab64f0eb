//! The one HTTP client every upstream call goes through: pooled keep-alive
//! connections, credentials applied here (providers never see them), and
//! transport failures classified for the retry loop.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};
use std::time::Duration;

use ferrolite_providers::{AuthScheme, UpstreamRequest};
use ferrolite_types::Secret;
use http::HeaderValue;

use crate::config::CloudAuth;

pub mod aws;
pub mod gcp;

/// Build the shared client. Call once at startup.
pub fn client() -> Result<reqwest::Client, String> {
    // reqwest is built without a bundled crypto provider; use ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(512)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        // Upstream APIs do not redirect; LiteLLM's httpx client does not
        // follow redirects either. Retries are the pipeline's decision alone.
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Why an upstream call produced no HTTP answer.
#[derive(Debug, Clone)]
pub enum TransportError {
    Timeout,
    Connect(String),
    /// The gateway could not authenticate the request (no token, bad key material).
    Credentials(String),
}

impl TransportError {
    pub fn from_reqwest(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            return TransportError::Timeout;
        }
        // Walk to the innermost cause: the useful text ("Connection refused").
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg = s.to_string();
            src = s.source();
        }
        let what = if e.is_connect() {
            "cannot connect to upstream"
        } else {
            "upstream request failed"
        };
        TransportError::Connect(format!("{what}: {msg}"))
    }
}

/// The credentials of the deployment being called.
#[derive(Clone, Copy, Default)]
pub struct Credentials<'a> {
    pub key: Option<&'a Secret>,
    pub cloud: Option<&'a CloudAuth>,
    pub gcp_tokens: Option<&'a gcp::TokenCache>,
}

fn secret_header(value: &str) -> Result<HeaderValue, TransportError> {
    let mut v = HeaderValue::try_from(value).map_err(|_| {
        TransportError::Credentials("the credential is not a valid header value".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// The authentication headers for `req`.
async fn auth_headers(
    client: &reqwest::Client,
    req: &UpstreamRequest,
    creds: Credentials<'_>,
) -> Result<Vec<(http::HeaderName, HeaderValue)>, TransportError> {
    match &req.auth {
        AuthScheme::None => Ok(Vec::new()),
        AuthScheme::Bearer => match creds.key {
            Some(k) => Ok(vec![(
                http::header::AUTHORIZATION,
                secret_header(&format!("Bearer {}", k.expose()))?,
            )]),
            None => Ok(Vec::new()),
        },
        AuthScheme::Header(name) => match creds.key {
            Some(k) => Ok(vec![(name.clone(), secret_header(k.expose())?)]),
            None => Ok(Vec::new()),
        },
        AuthScheme::GcpOAuth => {
            let (Some(CloudAuth::Gcp(g)), Some(tokens)) = (creds.cloud, creds.gcp_tokens) else {
                return Err(TransportError::Credentials(
                    "no Google credentials for this deployment".into(),
                ));
            };
            let token = tokens
                .token(client, g)
                .await
                .map_err(TransportError::Credentials)?;
            Ok(vec![(
                http::header::AUTHORIZATION,
                secret_header(&format!("Bearer {}", token.expose()))?,
            )])
        }
        AuthScheme::AwsSigV4 { region, service } => {
            let Some(CloudAuth::Aws(a)) = creds.cloud else {
                return Err(TransportError::Credentials(
                    "no AWS credentials for this deployment".into(),
                ));
            };
            let mut headers =
                aws::sign(req, a, region, service).map_err(TransportError::Credentials)?;
            for (_, v) in &mut headers {
                v.set_sensitive(true);
            }
            Ok(headers)
        }
    }
}

/// Send one request and wait for the response head (status and headers).
/// `timeout` bounds the wait for the head.
pub async fn send(
    client: &reqwest::Client,
    req: UpstreamRequest,
    creds: Credentials<'_>,
    timeout: Duration,
) -> Result<reqwest::Response, TransportError> {
    let auth = auth_headers(client, &req, creds).await?;
    let mut builder = match parsed_url(&req.url) {
        Some(url) => client.post(url),
        // Not a valid URL: reqwest reports it as it sends.
        None => client.post(&req.url),
    };
    for (name, value) in req.headers {
        builder = builder.header(name, value);
    }
    for (name, value) in auth {
        builder = builder.header(name, value);
    }
    let fut = builder.body(req.body).send();
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(TransportError::from_reqwest(&e)),
        Err(_) => Err(TransportError::Timeout),
    }
}

/// Upstream URLs, parsed once. A deployment's few URLs repeat on every call,
/// and parsing one (host normalisation included) cost more CPU than the
/// rest of building the request. Bounded: cleared when it reaches
/// [`URL_CACHE_MAX`] entries (per-model URLs of a large config).
fn parsed_url(url: &str) -> Option<reqwest::Url> {
    if let Some(u) = URLS.read().ok()?.get(url) {
        return Some(u.clone());
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    if let Ok(mut m) = URLS.write() {
        if m.len() >= URL_CACHE_MAX {
            m.clear();
        }
        m.insert(url.to_owned(), parsed.clone());
    }
    Some(parsed)
}

const URL_CACHE_MAX: usize = 1024;
static URLS: LazyLock<RwLock<HashMap<String, reqwest::Url>>> = LazyLock::new(Default::default);

/// Read a whole response body within what is left of `timeout`.
pub async fn read_body(
    resp: reqwest::Response,
    timeout: Duration,
) -> Result<bytes::Bytes, TransportError> {
    match tokio::time::timeout(timeout, resp.bytes()).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(TransportError::from_reqwest(&e)),
        Err(_) => Err(TransportError::Timeout),
    }
}

/// The `Retry-After` of an upstream answer, in seconds or as an HTTP date
/// delta (seconds only are supported; dates are ignored).
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_parsed_once_and_the_cache_is_bounded() {
        let u = "http://127.0.0.1:9/v1/chat/completions?api-version=2024-10-21";
        assert_eq!(parsed_url(u), reqwest::Url::parse(u).ok());
        assert!(URLS.read().unwrap().contains_key(u));
        assert_eq!(parsed_url(u).map(String::from), Some(u.to_owned()));
        assert_eq!(parsed_url("not a url"), None);
        for i in 0..URL_CACHE_MAX + 10 {
            assert!(parsed_url(&format!("http://h{i}.example/v1")).is_some());
            assert!(URLS.read().unwrap().len() <= URL_CACHE_MAX);
        }
    }
}
