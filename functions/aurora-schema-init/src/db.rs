//! Connecting to the cluster: TLS against the built-in Amazon RDS CA bundle, and patience while the
//! database comes up (refused connections, a name that does not resolve yet, a server starting).

use std::time::Duration;

use mysql_async::{Conn, OptsBuilder, SslOpts};
use tokio::time::Instant;

use crate::props::{Properties, Tls};
use crate::source::Login;
use crate::SchemaError;

/// Amazon RDS and Aurora CA certificates (scripts/update-rds-ca); the Mozilla roots come with rustls.
const RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-ca-bundle.pem");

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Kept before the handler's deadline to report what was waited for.
const REPORT_MARGIN: Duration = Duration::from_millis(500);

fn options(props: &Properties, login: &Login) -> OptsBuilder {
    let ssl = match props.tls {
        Tls::Required => Some(SslOpts::default().with_root_certs(vec![RDS_CA_BUNDLE.into()])),
        Tls::Disabled => None,
    };
    OptsBuilder::default()
        .ip_or_hostname(props.endpoint.clone())
        .tcp_port(props.port)
        .user(Some(login.username.clone()))
        .pass(Some(login.password.clone()))
        .prefer_socket(false)
        .stmt_cache_size(0)
        .ssl_opts(ssl)
}

/// Whether a failed connection attempt is worth another try: the server is not there yet, or is
/// starting, or has no free connection. A refused login or a TLS failure is final.
fn retryable(err: &mysql_async::Error) -> bool {
    match err {
        mysql_async::Error::Io(mysql_async::IoError::Io(_)) => true,
        mysql_async::Error::Server(e) => matches!(e.code, 1040 | 1053 | 1129 | 1152 | 1158..=1161 | 1184 | 1927),
        mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => true,
        _ => false,
    }
}

/// Connects, retrying with backoff until shortly before `deadline`.
pub async fn connect(props: &Properties, login: &Login, deadline: Instant) -> Result<Conn, SchemaError> {
    let endpoint = format!("{}:{}", props.endpoint, props.port);
    let started = Instant::now();
    let give_up = deadline.checked_sub(REPORT_MARGIN).unwrap_or(deadline);
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = give_up.saturating_duration_since(Instant::now());
        let attempt = tokio::time::timeout(props.connect_timeout.min(left), Conn::new(options(props, login))).await;
        let last = match attempt {
            Ok(Ok(conn)) => {
                tracing::info!(%endpoint, attempts, waited_ms = started.elapsed().as_millis() as u64, "connected");
                return Ok(conn);
            }
            Ok(Err(mysql_async::Error::Server(e))) if e.code == 1045 => {
                return Err(SchemaError::Denied { endpoint, message: e.message });
            }
            Ok(Err(e)) if !retryable(&e) => {
                return Err(SchemaError::Database(format!("connecting to {endpoint} failed: {e}")));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", props.connect_timeout.min(left).as_secs_f64()),
        };
        tracing::warn!(%endpoint, attempts, error = %last, "database not reachable yet");
        if Instant::now() + backoff >= give_up {
            return Err(SchemaError::Unavailable { endpoint, waited: started.elapsed(), attempts, last });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_holds_the_rds_roots() {
        let text = std::str::from_utf8(RDS_CA_BUNDLE).unwrap();
        assert!(text.matches("-----BEGIN CERTIFICATE-----").count() >= 100);
        assert_eq!(
            text.matches("-----BEGIN CERTIFICATE-----").count(),
            text.matches("-----END CERTIFICATE-----").count()
        );
    }

    /// rustls refuses the whole TLS setup when one root does not parse: every one must.
    #[test]
    fn every_certificate_in_the_bundle_is_accepted_as_a_root() {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::CertificateDer;
        let mut store = rustls::RootCertStore::empty();
        let mut count = 0;
        for cert in CertificateDer::pem_slice_iter(RDS_CA_BUNDLE) {
            store.add(cert.expect("a well-formed PEM block")).expect("a certificate webpki accepts as a root");
            count += 1;
        }
        assert_eq!(count, store.len());
        assert!(count >= 100);
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let server = |code| {
            mysql_async::Error::Server(mysql_async::ServerError { code, message: String::new(), state: String::new() })
        };
        assert!(retryable(&server(1040)), "too many connections");
        assert!(retryable(&server(1053)), "server shutdown in progress");
        assert!(!retryable(&server(1045)), "access denied");
        assert!(!retryable(&server(1049)), "unknown database");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(retryable(&mysql_async::Error::Io(mysql_async::IoError::Io(refused))));
    }
}
