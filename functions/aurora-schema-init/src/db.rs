//! Connecting to the cluster: TLS against the built-in Amazon RDS CA bundle and Amazon Trust Services
//! roots only, and patience while the database comes up (refused connections, a name that does not
//! resolve yet, a server starting).

use std::time::Duration;

use mysql_async::{Conn, OptsBuilder, SslOpts};
use tokio::time::Instant;

use crate::props::{Properties, Tls};
use crate::source::Login;
use crate::target::Target;
use crate::SchemaError;

/// Amazon RDS and Aurora CA certificates (scripts/update-rds-ca).
const RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-ca-bundle.pem");
/// Amazon Root CA 1-4 and Starfield Services Root CA G2, the roots RDS Proxy's certificates chain to.
/// No other root is trusted: mysql_async's built-in (webpki) roots are off, so a host with some public
/// certificate does not pass.
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Kept before the handler's deadline to report what was waited for.
const REPORT_MARGIN: Duration = Duration::from_millis(500);

fn options(props: &Properties, target: &Target, login: &Login) -> OptsBuilder {
    let ssl = match props.tls {
        Tls::Required => Some(
            SslOpts::default()
                .with_root_certs(vec![RDS_CA_BUNDLE.into(), AMAZON_TRUST_SERVICES.into()])
                .with_disable_built_in_roots(true),
        ),
        Tls::Disabled => None,
    };
    OptsBuilder::default()
        .ip_or_hostname(target.host.clone())
        .tcp_port(target.port)
        .user(Some(login.username.clone()))
        .pass(Some(login.password.clone()))
        .prefer_socket(false)
        .stmt_cache_size(0)
        .ssl_opts(ssl)
}

/// A failed TLS handshake: rustls (through tokio-rustls) reports a certificate the bundle does not
/// vouch for, a name that does not match or a protocol mismatch as an I/O error of kind `InvalidData`.
fn tls_failure(err: &mysql_async::Error) -> Option<&std::io::Error> {
    match err {
        mysql_async::Error::Io(mysql_async::IoError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => Some(e),
        _ => None,
    }
}

/// Whether a failed connection attempt is worth another try: the server is not there yet, or is
/// starting, or has no free connection. A refused login or a TLS failure is final: another attempt
/// meets the same certificate.
fn retryable(err: &mysql_async::Error) -> bool {
    match err {
        _ if tls_failure(err).is_some() => false,
        mysql_async::Error::Io(mysql_async::IoError::Io(_)) => true,
        mysql_async::Error::Server(e) => matches!(e.code, 1040 | 1053 | 1129 | 1152 | 1158..=1161 | 1184 | 1927),
        mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => true,
        _ => false,
    }
}

/// Connects, retrying with backoff until shortly before `deadline`.
pub async fn connect(
    props: &Properties,
    target: &Target,
    login: &Login,
    deadline: Instant,
) -> Result<Conn, SchemaError> {
    let endpoint = target.to_string();
    let started = Instant::now();
    let give_up = deadline.checked_sub(REPORT_MARGIN).unwrap_or(deadline);
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = give_up.saturating_duration_since(Instant::now());
        let attempt =
            tokio::time::timeout(props.connect_timeout.min(left), Conn::new(options(props, target, login))).await;
        let last = match attempt {
            Ok(Ok(conn)) => {
                tracing::info!(%endpoint, attempts, waited_ms = started.elapsed().as_millis() as u64, "connected");
                return Ok(conn);
            }
            Ok(Err(mysql_async::Error::Server(e))) if e.code == 1045 => {
                return Err(SchemaError::Denied { endpoint, message: crate::migrate::server_message(&e.message) });
            }
            Ok(Err(e)) if props.tls == Tls::Required && tls_failure(&e).is_some() => {
                let message = tls_failure(&e).map(ToString::to_string).unwrap_or_default();
                return Err(SchemaError::Tls { endpoint, message });
            }
            Ok(Err(e)) if !retryable(&e) => {
                return Err(SchemaError::Database(format!(
                    "connecting to {endpoint} failed: {}",
                    crate::migrate::error_text(&e)
                )));
            }
            Ok(Err(e)) => crate::migrate::error_text(&e),
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

    /// The Amazon Trust Services roots, by SHA-256 fingerprint (https://www.amazontrust.com/repository/).
    #[test]
    fn the_amazon_trust_services_roots_are_exactly_the_five() {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::CertificateDer;
        use sha2::{Digest, Sha256};
        let mut found: Vec<String> = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES)
            .map(|c| crate::source::hex(&Sha256::digest(c.unwrap().as_ref())))
            .collect();
        found.sort();
        let mut expected = [
            "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e", // Amazon Root CA 1
            "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4", // Amazon Root CA 2
            "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4", // Amazon Root CA 3
            "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092", // Amazon Root CA 4
            "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5", // Starfield Services Root CA G2
        ];
        expected.sort();
        assert_eq!(found, expected);
    }

    /// Only the built-in roots: mysql_async would otherwise add the whole webpki (Mozilla) store.
    #[test]
    fn tls_trusts_no_built_in_roots() {
        let props: Properties = stackhand::props::parse(&serde_json::json!({
            "Endpoint": "h", "Username": "u", "PasswordParameter": "/app/p", "SqlParameter": "/app/s"
        }))
        .unwrap();
        let target = Target { host: "h".into(), port: 3306 };
        let login = Login { username: "u".into(), password: "secret-pw".into() };
        let opts = mysql_async::Opts::from(options(&props, &target, &login));
        let ssl = opts.ssl_opts().expect("TLS by default");
        assert!(ssl.disable_built_in_roots());
        assert_eq!(ssl.root_certs().len(), 2, "the RDS bundle and the Amazon Trust Services roots");
    }

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

    /// The commercial Regions of AWS's global bundle: each has its RSA2048, RSA4096 and ECC384 G1 root.
    /// (GovCloud and China have bundles of their own.)
    const REGIONS: &[&str] = &[
        "af-south-1",
        "ap-east-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    ];

    #[test]
    fn the_bundle_has_the_current_roots_of_every_commercial_region() {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::CertificateDer;
        let mut store = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(RDS_CA_BUNDLE) {
            store.add(cert.unwrap()).unwrap();
        }
        let subjects: Vec<&[u8]> = store.roots.iter().map(|root| root.subject.as_ref()).collect();
        let has = |name: &str| subjects.iter().any(|s| s.windows(name.len()).any(|w| w == name.as_bytes()));
        let missing: Vec<String> = REGIONS
            .iter()
            .flat_map(|region| {
                ["RSA2048", "RSA4096", "ECC384"].map(|kind| format!("Amazon RDS {region} Root CA {kind} G1"))
            })
            .filter(|name| !has(name))
            .collect();
        assert!(missing.is_empty(), "the bundle lacks {missing:?}: run scripts/update-rds-ca");
    }

    /// A MySQL server that offers TLS and presents a self-signed certificate: the client's handshake
    /// packet, its SSL request, then a TLS handshake the client must refuse.
    async fn self_signed_server() -> u16 {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let cert = CertificateDer::from_pem_slice(include_bytes!("../tests/fixtures/self-signed.pem")).unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("../tests/fixtures/self-signed.key")).unwrap();
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert], key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // Protocol 41, secure connection, SSL, plugin auth; utf8mb4; mysql_native_password.
                    let caps: u32 = 0x0000_0001 | 0x0000_0200 | 0x0000_0800 | 0x0000_8000 | 0x0008_0000;
                    let mut hello = vec![10u8];
                    hello.extend_from_slice(b"8.0.36-fake\0");
                    hello.extend_from_slice(&7u32.to_le_bytes());
                    hello.extend_from_slice(b"abcdefgh\0");
                    hello.extend_from_slice(&(caps as u16).to_le_bytes());
                    hello.push(45);
                    hello.extend_from_slice(&2u16.to_le_bytes());
                    hello.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
                    hello.push(21);
                    hello.extend_from_slice(&[0; 10]);
                    hello.extend_from_slice(b"ijklmnopqrst\0");
                    hello.extend_from_slice(b"mysql_native_password\0");
                    let mut packet = (hello.len() as u32).to_le_bytes()[..3].to_vec();
                    packet.push(0);
                    packet.extend_from_slice(&hello);
                    socket.write_all(&packet).await.unwrap();
                    let mut header = [0u8; 4];
                    socket.read_exact(&mut header).await.unwrap();
                    let mut request = vec![0u8; u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize];
                    socket.read_exact(&mut request).await.unwrap();
                    let _ = acceptor.accept(socket).await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn a_certificate_the_bundle_does_not_vouch_for_fails_at_once_with_the_cause() {
        let port = self_signed_server().await;
        let props: Properties = stackhand::props::parse(&serde_json::json!({
            "Endpoint": "127.0.0.1", "Port": port.to_string(), "Username": "u", "PasswordParameter": "/p",
            "SqlParameter": "/s", "ConnectTimeoutSeconds": "2"
        }))
        .unwrap();
        let login = Login { username: "u".into(), password: "secret-pw".into() };
        let target = Target { host: "127.0.0.1".into(), port };
        let started = Instant::now();
        let err = connect(&props, &target, &login, started + Duration::from_secs(20)).await.expect_err("refused");
        assert!(started.elapsed() < Duration::from_secs(3), "not retried: {:?}", started.elapsed());
        let text = err.to_string();
        assert!(matches!(err, SchemaError::Tls { .. }), "{text}");
        assert!(text.starts_with(&format!("the TLS handshake with 127.0.0.1:{port} failed: ")), "{text}");
        assert!(text.contains("UnknownIssuer"), "the real cause: {text}");
        assert!(!text.contains("secret-pw"));
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
        let tls = std::io::Error::new(std::io::ErrorKind::InvalidData, "invalid peer certificate: UnknownIssuer");
        assert!(!retryable(&mysql_async::Error::Io(mysql_async::IoError::Io(tls))), "a TLS failure is final");
    }
}
