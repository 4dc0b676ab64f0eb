//! Google OAuth access tokens for Vertex AI: from a service account (a JWT
//! signed with its key, exchanged at Google's token endpoint) or the metadata
//! server, cached until shortly before they expire. (Stub: being written.)

use ferrolite_types::Secret;

use crate::config::GcpAuth;

/// Cached tokens, one per credential.
#[derive(Default)]
pub struct TokenCache {}

impl TokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A valid access token for `auth`, fetched or refreshed when needed.
    pub async fn token(&self, http: &reqwest::Client, auth: &GcpAuth) -> Result<Secret, String> {
        let _ = (http, auth);
        Err("Google OAuth for Vertex AI is not implemented yet".into())
    }
}
