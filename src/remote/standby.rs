//! What a cluster standby's listener answers (`serve --cluster` before it
//! leads): every request with a valid token gets `503` naming the leader's
//! console, so `attach` tells the operator where to go; without one, `401`
//! as from the leader. No state is served and no command accepted.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::auth::Tokens;

/// The response header that carries the refusal's text.
pub const REFUSAL_HEADER: &str = "Shieldops-Refusal";
/// Largest request head read before answering.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections answered at once; more wait in the kernel's backlog.
const MAX_IN_FLIGHT: usize = 64;

/// Answers on `listener` until dropped (it never returns); `leader` says where the leader's
/// console is right now (`None`: nobody holds the lease).
pub async fn answer<F, Fut>(
    listener: &TcpListener,
    tls: Option<TlsAcceptor>,
    tokens: Tokens,
    site: String,
    leader: F,
) -> std::convert::Infallible
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<String>> + Send,
{
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let shared = Arc::new((tokens, site, leader));
    loop {
        // The semaphore is never closed.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            continue;
        };
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (tls, shared) = (tls.clone(), shared.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let (tokens, site, leader) = &*shared;
            let reply = async {
                match tls {
                    Some(tls) => {
                        let stream = tls.accept(tcp).await.ok()?;
                        respond(stream, tokens, site, leader).await
                    }
                    None => respond(tcp, tokens, site, leader).await,
                }
            };
            let _ = tokio::time::timeout(HEAD_TIMEOUT * 2, reply).await;
        });
    }
}

async fn respond<S, F, Fut>(mut stream: S, tokens: &Tokens, site: &str, leader: &F) -> Option<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream))
        .await
        .ok()??;
    let authorization = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.trim().to_string());
    let response = if tokens.verify_header(authorization.as_deref()).is_none() {
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
    } else {
        let body = match leader().await {
            Some(console) => format!(
                "this node is a standby of site {site}; the leader's console is {console}\n"
            ),
            None => format!(
                "this node is a standby of site {site}; no node leads right now, try again shortly\n"
            ),
        };
        // Also in a header: a WebSocket client reads the head for sure, the
        // body only if it arrived with it.
        let said: String = body.trim().chars().filter(|c| !c.is_control()).collect();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n{REFUSAL_HEADER}: {said}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    stream.write_all(response.as_bytes()).await.ok()?;
    stream.shutdown().await.ok()
}

/// The request head (up to the blank line), if it came whole and in bounds.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(head).ok()
}

/// The first line of a refusal's body, as plain printable text (it comes
/// from the server and is shown in a terminal).
pub fn refusal_text(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let line: String = text
        .lines()
        .next()?
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    (!line.trim().is_empty()).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_body_loses_terminal_escapes_and_is_bounded() {
        let body = b"standby \x1b]52;c;aGk=\x07of site x\x1b[2J\nsecond line";
        let text = refusal_text(body).unwrap();
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(text.starts_with("standby ") && text.contains("of site x"));
        assert!(!text.contains("second"));
        assert_eq!(refusal_text(&[b'a'; 10_000]).unwrap().len(), 300);
        assert_eq!(refusal_text(b""), None);
    }
}
