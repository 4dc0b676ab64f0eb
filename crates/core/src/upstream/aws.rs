//! AWS Signature Version 4 for Bedrock requests. (Stub: being written.)

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
    let _ = (req, creds, region, service);
    Err("AWS SigV4 signing is not implemented yet".into())
}
