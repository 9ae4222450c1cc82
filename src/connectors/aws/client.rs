//! Building SDK configuration through `aws-config`'s standard chain, and
//! reading what an AWS error means (throttled, expired, denied) from its code.

use std::time::SystemTime;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_runtime::env_config::file::EnvConfigFiles as ProfileFiles;
use aws_sdk_ec2::config::ProvideCredentials;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls;

use crate::connectors::ConnectorError;

/// One profile (or the default chain) in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `None` = the default chain (`AWS_PROFILE`, environment, …).
    pub profile: Option<String>,
    pub region: Option<String>,
}

impl Target {
    /// The profile's name as shown and used in ids (`default` for the chain).
    pub fn profile_label(&self) -> &str {
        self.profile.as_deref().unwrap_or("default")
    }
}

/// Loads the SDK configuration for a target: credentials, region and
/// `AWS_ENDPOINT_URL` all come from `aws-config`'s standard resolution.
pub(crate) async fn load(
    target: &Target,
    config: &super::AwsConfig,
    files: Option<&ProfileFiles>,
) -> SdkConfig {
    // rustls with ring: no C toolchain or cmake needed to build, unlike aws-lc.
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts));
    if let Some(files) = files {
        loader = loader.profile_files(files.clone());
    }
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &target.region {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}

/// What the credential chain says before any API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredentialCheck {
    Usable,
    /// Nothing in the chain: the connector is absent.
    Missing(String),
    /// Found but unusable (expired, SSO session over): the connector is failing.
    Unusable(String),
}

/// Asks the chain for credentials once, to tell "absent" from "expired".
pub(crate) async fn check_credentials(config: &SdkConfig, target: &Target) -> CredentialCheck {
    let profile = target.profile_label();
    let Some(provider) = config.credentials_provider() else {
        return CredentialCheck::Missing(how_to_add(profile));
    };
    match provider.provide_credentials().await {
        Ok(creds) => match creds.expiry() {
            Some(at) if at <= SystemTime::now() => {
                let at: chrono::DateTime<chrono::Utc> = at.into();
                CredentialCheck::Unusable(expired_message(
                    profile,
                    &format!("expired at {}", at.format("%Y-%m-%d %H:%M UTC")),
                ))
            }
            _ => CredentialCheck::Usable,
        },
        Err(CredentialsError::CredentialsNotLoaded(_)) => {
            CredentialCheck::Missing(how_to_add(profile))
        }
        Err(e) => CredentialCheck::Unusable(expired_message(
            profile,
            &first_line(&DisplayErrorContext(&e).to_string()),
        )),
    }
}

/// The one line the Fleet pane shows when there are no AWS credentials.
pub(super) fn how_to_add(profile: &str) -> String {
    format!(
        "no AWS credentials for profile `{profile}`: add an [aws] section with profiles and regions \
         to the config file and credentials to ~/.aws (or AWS_PROFILE / AWS_ACCESS_KEY_ID)"
    )
}

fn expired_message(profile: &str, detail: &str) -> String {
    format!(
        "AWS credentials for profile `{profile}` are not usable ({detail}): refresh them \
         (`aws sso login --profile {profile}` or new keys); the last known fleet is kept"
    )
}

/// What kind of failure an AWS error is, which decides back-off and the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    Throttled,
    Expired,
    Denied,
    NotFound,
    Other,
}

/// An AWS call that failed, classified.
#[derive(Debug, Clone)]
pub(crate) struct AwsFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl AwsFailure {
    /// Classifies an SDK error by its AWS error code.
    pub fn of<E, R>(what: &str, err: &SdkError<E, R>) -> AwsFailure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let text = first_line(&DisplayErrorContext(err).to_string());
        let kind = classify(err.code(), &text);
        let message = match err.code() {
            Some(code) => format!("{what}: {code}: {}", err.message().unwrap_or(text.as_str())),
            None => format!("{what}: {text}"),
        };
        AwsFailure { kind, message }
    }
}

impl From<AwsFailure> for ConnectorError {
    fn from(f: AwsFailure) -> Self {
        ConnectorError::Backend(f.message)
    }
}

/// Maps AWS error codes (and, for errors raised before a request is sent,
/// the credential error text) to what they mean for polling.
pub(super) fn classify(code: Option<&str>, text: &str) -> FailureKind {
    match code {
        Some(
            "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "SlowDown",
        ) => FailureKind::Throttled,
        Some(
            "ExpiredToken"
            | "ExpiredTokenException"
            | "RequestExpired"
            | "TokenRefreshRequired"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "AuthFailure",
        ) => FailureKind::Expired,
        Some(
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "UnauthorizedException",
        ) => FailureKind::Denied,
        Some(c) if c.contains("NotFound") || c.starts_with("InvalidInstanceID") => {
            FailureKind::NotFound
        }
        Some(_) => FailureKind::Other,
        None if text.contains("expired") || text.contains("credentials") => FailureKind::Expired,
        None => FailureKind::Other,
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    line.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_are_throttled() {
        for code in ["ThrottlingException", "RequestLimitExceeded", "Throttling"] {
            assert_eq!(classify(Some(code), ""), FailureKind::Throttled, "{code}");
        }
    }

    #[test]
    fn expired_and_denied_are_told_apart() {
        assert_eq!(classify(Some("ExpiredToken"), ""), FailureKind::Expired);
        assert_eq!(
            classify(Some("AccessDeniedException"), ""),
            FailureKind::Denied
        );
        assert_eq!(
            classify(None, "failed to load credentials: the token has expired"),
            FailureKind::Expired
        );
        assert_eq!(classify(Some("InternalError"), ""), FailureKind::Other);
    }
}
