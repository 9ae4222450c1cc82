//! The HTTP side shared by Slack, PagerDuty and the webhook: one rustls
//! client, and a reading of the response that never repeats the URL.

use super::DeliveryError;

/// The client every HTTP channel shares (rustls, system roots).
pub(crate) fn client(timeout: std::time::Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("shieldops/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))
}

/// Sends `request`; 2xx is delivered, 408/429/5xx and transport errors are
/// worth retrying, any other status is not. A receiver's error body may echo
/// the credential, so it is scrubbed of `secrets` before it is shortened.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    secrets: &[String],
) -> Result<(), DeliveryError> {
    // reqwest errors name the URL, and for a Slack webhook the URL is the key.
    let response = request.send().await.map_err(|e| {
        let e = e.without_url();
        DeliveryError::retryable(format!("HTTP request failed: {e}"))
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = super::redact(&body, secrets).chars().take(200).collect();
    let message = format!("HTTP {status}: {}", body.trim());
    if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(DeliveryError::retryable(message))
    } else {
        Err(DeliveryError::permanent(message))
    }
}
