//! `lode-server healthcheck`: asks the server on the configured address whether it is ready
//! (`GET /readyz`), for container health checks in an image that has no shell or curl.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("listen address '{0}' is not IP:PORT")]
    Address(String),
    #[error("{url}: {reason}")]
    Request { url: String, reason: String },
    #[error("{url} answered {status}")]
    NotReady { url: String, status: u16 },
    #[error("{url}: no answer within {}s", timeout.as_secs_f64())]
    Timeout { url: String, timeout: Duration },
}

/// The URL of `/readyz` on the server listening on `listen`. A server bound to every interface
/// is asked over loopback.
pub fn ready_url(listen: &str, tls: bool) -> Result<String, HealthError> {
    let mut addr: SocketAddr = listen
        .parse()
        .map_err(|_| HealthError::Address(listen.to_string()))?;
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    let scheme = if tls { "https" } else { "http" };
    Ok(format!("{scheme}://{addr}/readyz"))
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Succeeds when `url` answers 200 within `timeout`.
pub async fn check(url: &str, timeout: Duration) -> Result<(), HealthError> {
    let request_err = |e: reqwest::Error| HealthError::Request {
        url: url.to_string(),
        reason: chain(&e.without_url()),
    };
    // The probe talks to this machine's own server and sends no credentials: it checks that
    // the server answers, not who it is, so the certificate (issued for the public name, not
    // for loopback) is not verified.
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .map_err(request_err)?;
    let answer = tokio::time::timeout(timeout, client.get(url).send())
        .await
        .map_err(|_| HealthError::Timeout {
            url: url.to_string(),
            timeout,
        })?
        .map_err(request_err)?;
    match answer.status().as_u16() {
        200 => Ok(()),
        status => Err(HealthError::NotReady {
            url: url.to_string(),
            status,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_asked_over_loopback() {
        assert_eq!(
            ready_url("0.0.0.0:8080", false).unwrap(),
            "http://127.0.0.1:8080/readyz"
        );
        assert_eq!(
            ready_url("[::]:8443", true).unwrap(),
            "https://[::1]:8443/readyz"
        );
        assert_eq!(
            ready_url("10.1.2.3:80", false).unwrap(),
            "http://10.1.2.3:80/readyz"
        );
        assert!(ready_url("localhost:8080", false).is_err());
    }

    #[tokio::test]
    async fn a_closed_port_fails_and_a_silent_one_times_out() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = ready_url(&closed.local_addr().unwrap().to_string(), false).unwrap();
        drop(closed);
        assert!(matches!(
            check(&url, Duration::from_secs(5)).await,
            Err(HealthError::Request { .. })
        ));

        // Accepts connections (the kernel's backlog) but never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = ready_url(&silent.local_addr().unwrap().to_string(), false).unwrap();
        let r = check(&url, Duration::from_millis(300)).await;
        assert!(matches!(r, Err(HealthError::Timeout { .. })), "{r:?}");
    }
}
