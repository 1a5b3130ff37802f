//! Protections every local port shares, as middleware: they exist because a developer's browser
//! visits other sites while `snaplabel dev` runs.
//!
//! - **Host allow-list**: a request must name 127.0.0.1, localhost (or ::1), or the configured
//!   public host, as `Host`. DNS rebinding (a site whose name suddenly resolves to 127.0.0.1) sends
//!   its own name and is refused, so a page elsewhere cannot read the local API, S3 or identities.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The host names a local server answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts(Arc<Vec<String>>);

impl AllowedHosts {
    /// Loopback names plus `extra` (a public host name the stack is reached by, if any).
    pub fn loopback_and(extra: impl IntoIterator<Item = String>) -> Self {
        let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .into_iter()
            .map(String::from)
            .collect();
        hosts.extend(extra.into_iter().map(|h| h.to_ascii_lowercase()));
        AllowedHosts(Arc::new(hosts))
    }

    /// Whether `host` (a `Host` header: a name, an IPv4 address or a bracketed IPv6 address,
    /// with or without a port) is one of them.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let name = if host.starts_with('[') {
            host.split(']')
                .next()
                .map(|h| format!("{h}]"))
                .unwrap_or_default()
        } else {
            host.split(':').next().unwrap_or_default().to_string()
        };
        self.0.contains(&name)
    }
}

/// Refuses requests whose `Host` is not allowed (421 Misdirected Request).
pub async fn allow_hosts(
    State(allowed): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default()
        .to_string();
    if !allowed.allows(&host) {
        tracing::warn!(host = %host, "refused a request for another host (DNS rebinding?)");
        return (
            StatusCode::MISDIRECTED_REQUEST,
            format!("this local server answers to 127.0.0.1 and localhost only, not {host:?}\n"),
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_pass_and_others_do_not() {
        let hosts = AllowedHosts::loopback_and(["Dev.Example.Org".to_string()]);
        for ok in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:9000",
            "[::1]:8080",
            "dev.example.org",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "",
            "[::2]:80",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
    }
}
