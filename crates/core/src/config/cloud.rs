//! Cloud credentials for Vertex AI (Google OAuth) and Bedrock (AWS SigV4):
//! read once from `litellm_params` or the standard environment variables,
//! kept as secrets, used by the upstream sender.

use ferrolite_providers::{AuthScheme, ProviderKind};
use ferrolite_types::Secret;
use serde_json::Value;

use super::values::as_string;
use super::{ConfigIssue, Env};

/// How the sender authenticates a cloud deployment.
#[derive(Debug, Clone)]
pub enum CloudAuth {
    Gcp(GcpAuth),
    Aws(AwsAuth),
}

#[derive(Debug, Clone)]
pub struct GcpAuth {
    /// Service-account JSON (from `vertex_credentials`, a file it names, or
    /// `GOOGLE_APPLICATION_CREDENTIALS`). `None`: the metadata server.
    pub credentials: Option<Secret>,
    pub project: String,
    pub location: String,
}

#[derive(Debug, Clone)]
pub struct AwsAuth {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub region: String,
}

/// What a cloud provider contributes to a deployment's target.
pub(crate) struct CloudSetup {
    pub auth: CloudAuth,
    pub api_base: String,
    pub scheme: AuthScheme,
    pub kind: ProviderKind,
}

type Get<'a> = &'a dyn Fn(&str) -> Option<&'a Value>;

fn text(get: Get<'_>, key: &str, pbase: &str, issues: &mut Vec<ConfigIssue>) -> Option<String> {
    let v = get(key)?;
    match as_string(v) {
        Ok(s) if !s.is_empty() => Some(s),
        Ok(_) => None,
        Err(message) => {
            issues.push(ConfigIssue {
                path: format!("{pbase}.{key}"),
                message,
            });
            None
        }
    }
}

/// `vertex_credentials`: inline JSON (a string or a mapping) or a path to a JSON file.
fn gcp_credentials(
    get: Get<'_>,
    env: &Env,
    pbase: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Secret> {
    let path = format!("{pbase}.vertex_credentials");
    let from_file = |file: &str, issues: &mut Vec<ConfigIssue>| match std::fs::read_to_string(file)
    {
        Ok(t) => Some(Secret::new(t)),
        Err(e) => {
            issues.push(ConfigIssue {
                path: path.clone(),
                message: format!("cannot read credentials file {file}: {e}"),
            });
            None
        }
    };
    match get("vertex_credentials") {
        Some(Value::Object(m)) => Some(Secret::new(Value::Object(m.clone()).to_string())),
        Some(Value::String(s)) if s.trim_start().starts_with('{') => Some(Secret::new(s.clone())),
        Some(Value::String(s)) if !s.is_empty() => from_file(s, issues),
        Some(other) if !other.is_null() => {
            issues.push(ConfigIssue {
                path,
                message: "expected service-account JSON or a path to it".into(),
            });
            None
        }
        _ => env
            .get("GOOGLE_APPLICATION_CREDENTIALS")
            .and_then(|f| from_file(&f, issues)),
    }
}

pub(crate) fn vertex(
    get: Get<'_>,
    env: &Env,
    model: &str,
    user_base: Option<&str>,
    pbase: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<CloudSetup> {
    let credentials = gcp_credentials(get, env, pbase, issues);
    let project_from_creds = credentials
        .as_ref()
        .and_then(|c| serde_json::from_str::<Value>(c.expose()).ok())
        .and_then(|v| {
            v.get("project_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let project = text(get, "vertex_project", pbase, issues)
        .or_else(|| {
            env.first(&[
                "VERTEXAI_PROJECT".into(),
                "VERTEX_PROJECT".into(),
                "GOOGLE_CLOUD_PROJECT".into(),
            ])
        })
        .or(project_from_creds);
    let Some(project) = project else {
        issues.push(ConfigIssue {
            path: format!("{pbase}.vertex_project"),
            message: "Vertex AI needs a project: set vertex_project, VERTEXAI_PROJECT or a service account with project_id".into(),
        });
        return None;
    };
    let location = text(get, "vertex_location", pbase, issues)
        .or_else(|| env.first(&["VERTEXAI_LOCATION".into(), "VERTEX_LOCATION".into()]))
        .unwrap_or_else(|| "us-central1".to_owned());
    let host = match user_base {
        Some(b) => b.trim_end_matches('/').to_owned(),
        None if location == "global" => "https://aiplatform.googleapis.com".to_owned(),
        None => format!("https://{location}-aiplatform.googleapis.com"),
    };
    let kind = if model.starts_with("claude") {
        ProviderKind::VertexAnthropic
    } else {
        ProviderKind::VertexGemini
    };
    Some(CloudSetup {
        api_base: format!("{host}/v1/projects/{project}/locations/{location}"),
        auth: CloudAuth::Gcp(GcpAuth {
            credentials,
            project,
            location,
        }),
        scheme: AuthScheme::GcpOAuth,
        kind,
    })
}

pub(crate) fn bedrock(
    get: Get<'_>,
    env: &Env,
    user_base: Option<&str>,
    pbase: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Result<CloudSetup, String> {
    let pick = |key: &str, vars: &[&str], issues: &mut Vec<ConfigIssue>| {
        text(get, key, pbase, issues)
            .or_else(|| env.first(&vars.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>()))
    };
    let region = pick(
        "aws_region_name",
        &["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"],
        issues,
    )
    .ok_or("no AWS region: set aws_region_name or AWS_REGION")?;
    let key_id = pick("aws_access_key_id", &["AWS_ACCESS_KEY_ID"], issues);
    let secret = pick("aws_secret_access_key", &["AWS_SECRET_ACCESS_KEY"], issues);
    let (Some(key_id), Some(secret)) = (key_id, secret) else {
        return Err("no AWS credentials: set aws_access_key_id and aws_secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); profiles, roles and instance credentials are not supported yet".into());
    };
    let session = pick("aws_session_token", &["AWS_SESSION_TOKEN"], issues);
    let endpoint = text(get, "aws_bedrock_runtime_endpoint", pbase, issues);
    let api_base = endpoint
        .or_else(|| user_base.map(str::to_owned))
        .or_else(|| env.get("AWS_BEDROCK_RUNTIME_ENDPOINT"))
        .map(|b| b.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"));
    Ok(CloudSetup {
        api_base,
        scheme: AuthScheme::AwsSigV4 {
            region: region.clone(),
            service: "bedrock",
        },
        auth: CloudAuth::Aws(AwsAuth {
            access_key_id: Secret::new(key_id),
            secret_access_key: Secret::new(secret),
            session_token: session.map(Secret::new),
            region,
        }),
        kind: ProviderKind::Bedrock,
    })
}
