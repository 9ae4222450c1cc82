//! Desktop notifications on the session bus (notify-rust). The console's
//! "approval needed" pop-up and the desktop channel both go through [`show`].

use async_trait::async_trait;

use super::{Channel, DeliveryError, Message};
use crate::event::Severity;

/// Shows one notification; blocks on D-Bus, so call it off async tasks.
pub fn show(summary: &str, body: &str, critical: bool) -> Result<(), String> {
    let mut n = notify_rust::Notification::new();
    n.appname("shieldops").summary(summary).body(body);
    #[cfg(all(unix, not(target_os = "macos")))]
    n.urgency(if critical {
        notify_rust::Urgency::Critical
    } else {
        notify_rust::Urgency::Normal
    });
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    let _ = critical;
    n.show().map(|_| ()).map_err(|e| e.to_string())
}

/// The desktop channel.
pub(crate) struct Desktop;

#[async_trait]
impl Channel for Desktop {
    fn recipient(&self) -> String {
        "desktop session".into()
    }

    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }

    async fn deliver(&self, m: &Message) -> Result<(), DeliveryError> {
        let summary = format!("ShieldOps: {}", m.title);
        let body = format!("{}\n{}", m.body, m.context_line());
        let critical = m.severity >= Severity::High;
        tokio::task::spawn_blocking(move || show(&summary, &body, critical))
            .await
            .map_err(|e| DeliveryError::retryable(format!("desktop notifier task: {e}")))?
            .map_err(|e| DeliveryError::retryable(format!("desktop notification: {e}")))
    }
}
