//! Email over SMTP with lettre: STARTTLS (or implicit TLS) through rustls,
//! trusting the system roots plus an optional site CA file.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config::{EmailConfig, SmtpTls};
use super::{Channel, DeliveryError, Message};

/// Sends one plain-text email per notification.
pub(crate) struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    password: Option<String>,
}

impl Email {
    /// Builds the transport; reads the CA file now so a bad one is a start-up error.
    pub fn new(c: &EmailConfig, timeout: Duration) -> Result<Email, String> {
        let mut tls = TlsParameters::builder(c.host.clone());
        if let Some(path) = &c.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("ca_file: cannot read {}: {e}", path.display()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                format!("ca_file: {} holds no PEM certificate: {e}", path.display())
            })?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| format!("cannot set up TLS for {}: {e}", c.host))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.clone())
            .port(c.port)
            .timeout(Some(timeout))
            .tls(match c.tls {
                SmtpTls::Starttls => Tls::Required(tls),
                SmtpTls::Tls => Tls::Wrapper(tls),
            });
        if let Some(user) = &c.username {
            let password = c.password.as_ref().map(|p| p.0.clone()).unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let parse = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| format!("`{a}` is not an email address: {e}"))
        };
        Ok(Email {
            transport: builder.build(),
            from: parse(&c.from)?,
            to: c.to.iter().map(|a| parse(a)).collect::<Result<_, _>>()?,
            password: c.password.as_ref().map(|p| p.0.clone()),
        })
    }
}

/// The subject line and plain-text body.
pub fn render(m: &Message) -> (String, String) {
    let subject = format!("[ShieldOps {}] {}", m.severity.as_str(), m.title);
    let body = format!(
        "{}\n\n{}\n\n{}\nat {}\n\n-- \nShieldOps console; dedup key {}\n",
        m.title,
        m.body,
        m.context_line(),
        m.at.to_rfc3339(),
        m.dedup_key
    );
    (subject, body)
}

#[async_trait]
impl Channel for Email {
    fn recipient(&self) -> String {
        self.to
            .iter()
            .map(|m| m.email.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn secrets(&self) -> Vec<String> {
        self.password.iter().cloned().collect()
    }

    async fn deliver(&self, m: &Message) -> Result<(), DeliveryError> {
        let (subject, body) = render(m);
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let email = builder
            .body(body)
            .map_err(|e| DeliveryError::permanent(format!("cannot build the email: {e}")))?;
        self.transport.send(email).await.map(|_| ()).map_err(|e| {
            // A permanent SMTP reply (5xx) will not change on retry.
            if e.is_permanent() {
                DeliveryError::permanent(format!("SMTP: {e}"))
            } else {
                DeliveryError::retryable(format!("SMTP: {e}"))
            }
        })
    }
}
