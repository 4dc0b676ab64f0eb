//! AWS Signature Version 4 for Bedrock requests, computed by `aws-sigv4`
//! (the AWS SDK's own signer).
//!
//! What is signed is what [`super::send`] sends: `POST` to `req.url` with
//! `req.headers` and `req.body`. The URL must already be percent-encoded the
//! way it goes on the wire (the Bedrock adapter encodes the `:` of model ids
//! as `%3A`); the canonical URI then encodes it once more (`%253A`), as
//! botocore and every AWS SDK do for services other than S3.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign as sigv4_sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use ferrolite_providers::UpstreamRequest;
use http::{HeaderName, HeaderValue};

use crate::config::AwsAuth;

/// The headers that sign `req` (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` with session credentials), for `service` in `region`.
pub fn sign(
    req: &UpstreamRequest,
    creds: &AwsAuth,
    region: &str,
    service: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    sign_at(req, creds, region, service, SystemTime::now())
}

/// [`sign`] at a given time (tests use a fixed clock).
pub fn sign_at(
    req: &UpstreamRequest,
    creds: &AwsAuth,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let identity: Identity = Credentials::new(
        creds.access_key_id.expose(),
        creds.secret_access_key.expose(),
        creds.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "ferrolite-config",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign the AWS request: {e}"))?
        .into();

    // Header values that are not text cannot be signed (nor would AWS accept
    // them); refuse rather than sign something other than what is sent.
    let mut headers = Vec::with_capacity(req.headers.len());
    for (name, value) in &req.headers {
        let value = value
            .to_str()
            .map_err(|_| format!("header {name} is not text and cannot be signed"))?;
        headers.push((name.as_str(), value));
    }
    let signable = SignableRequest::new(
        "POST",
        req.url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&req.body),
    )
    .map_err(|e| format!("cannot sign the AWS request for {}: {e}", req.url))?;
    let (instructions, _signature) = sigv4_sign(signable, &params)
        .map_err(|e| format!("cannot sign the AWS request: {e}"))?
        .into_parts();
    let (signed, _query) = instructions.into_parts();
    signed
        .into_iter()
        .map(|h| {
            let name = HeaderName::from_static(h.name());
            let mut value = HeaderValue::try_from(h.value())
                .map_err(|_| format!("the signed header {} is not a valid value", h.name()))?;
            // Kept out of logs and debug output, like every credential.
            value.set_sensitive(true);
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::{Duration, UNIX_EPOCH};

    use bytes::Bytes;
    use ferrolite_providers::AuthScheme;
    use ferrolite_types::Secret;

    use super::*;

    /// 2025-10-01T12:34:56Z.
    fn fixed_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_759_322_096)
    }

    fn request() -> UpstreamRequest {
        UpstreamRequest {
            url: "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse".into(),
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: Bytes::from_static(
                br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#,
            ),
            auth: AuthScheme::AwsSigV4 {
                region: "us-east-1".into(),
                service: "bedrock",
            },
        }
    }

    fn creds(token: Option<&str>) -> AwsAuth {
        AwsAuth {
            access_key_id: Secret::new("AKIDEXAMPLE".to_owned()),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned()),
            session_token: token.map(|t| Secret::new(t.to_owned())),
            region: "us-east-1".into(),
        }
    }

    fn header<'a>(h: &'a [(HeaderName, HeaderValue)], name: &str) -> Option<&'a str> {
        h.iter()
            .find(|(k, _)| k.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    // Expected values computed independently with botocore 1.44.5
    // (`SigV4Auth(creds, "bedrock", "us-east-1").add_auth(AWSRequest(...))`
    // on the same URL, headers and body, with the clock fixed), the signer
    // LiteLLM uses.

    #[test]
    fn matches_botocore_signature() {
        let h = sign_at(
            &request(),
            &creds(None),
            "us-east-1",
            "bedrock",
            fixed_time(),
        )
        .unwrap();
        assert_eq!(header(&h, "x-amz-date"), Some("20251001T123456Z"));
        assert_eq!(
            header(&h, "authorization"),
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251001/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=61f2775aeaea930be376619e8bc2828ecf27e564c732204511b11078e220bd07")
        );
        assert!(header(&h, "x-amz-security-token").is_none());
        assert!(h
            .iter()
            .find(|(k, _)| k == http::header::AUTHORIZATION)
            .is_some_and(|(_, v)| v.is_sensitive()));
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let token = "FwoGZXIvYXdzEXAMPLETOKEN";
        let h = sign_at(
            &request(),
            &creds(Some(token)),
            "us-east-1",
            "bedrock",
            fixed_time(),
        )
        .unwrap();
        assert_eq!(header(&h, "x-amz-security-token"), Some(token));
        assert_eq!(
            header(&h, "authorization"),
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251001/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=a3a5e83c6121d41789be673d945a70266dcb408eb19d8d696b8cf4ce8534e413")
        );
    }

    #[test]
    fn body_and_region_change_the_signature() {
        let base = sign_at(
            &request(),
            &creds(None),
            "us-east-1",
            "bedrock",
            fixed_time(),
        )
        .unwrap();
        let mut other = request();
        other.body = Bytes::from_static(b"{}");
        let changed = sign_at(&other, &creds(None), "us-east-1", "bedrock", fixed_time()).unwrap();
        assert_ne!(
            header(&base, "authorization"),
            header(&changed, "authorization")
        );
        let west = sign_at(
            &request(),
            &creds(None),
            "us-west-2",
            "bedrock",
            fixed_time(),
        )
        .unwrap();
        assert!(header(&west, "authorization")
            .unwrap()
            .contains("/20251001/us-west-2/bedrock/aws4_request"));
    }

    #[test]
    fn bad_url_is_an_error() {
        let mut r = request();
        r.url = "not a url".into();
        assert!(sign_at(&r, &creds(None), "us-east-1", "bedrock", fixed_time()).is_err());
    }
}
