//! What lapin needs to connect to one node's URL: the URI, with its host as
//! written (lapin's own parser goes to `localhost` for an IPv6 address such
//! as `amqp://[fd00::5]/`), and the TLS settings of an `amqps://` URL. The
//! system's CAs are trusted; a CA of your own (a self-signed or private
//! one) is named by the URL's `cacertfile` query parameter, a PEM file, as
//! RabbitMQ's URI spec names it:
//! `amqps://user:password@host:5671/vhost?cacertfile=/etc/rabbitmq-ca.pem`.
//!
//! The largest frame asked for is [`FRAME_MAX`] unless the URL's
//! `frame_max` query parameter says otherwise.

use crate::secret_url::SecretUrl;
use lapin::tcp::OwnedTLSConfig;
use lapin::uri::{AMQPScheme, AMQPUri};
use std::path::{Path, PathBuf};

/// The query parameter naming the CA file to trust (PEM).
pub const CA_FILE_PARAMETER: &str = "cacertfile";

/// The largest AMQP frame a connection asks for (RabbitMQ's default is
/// 128 KiB), unless the URL sets `frame_max`. lapin keeps a send and a
/// receive buffer of 32 frames per connection, which its I/O loop goes
/// round: 8 MiB of resident memory per connection at 128 KiB, 2 MiB at
/// this size. A Clerk event (about 2 KB) is one body frame either way; a
/// body larger than a frame is sent in several.
pub const FRAME_MAX: u32 = 32 * 1024;

/// Why a node's URL cannot be used (no part of the URL but the CA file's path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("not a valid AMQP URL ({0})")]
    Invalid(String),
    #[error("{CA_FILE_PARAMETER} is only for amqps:// URLs")]
    CaFileWithoutTls,
    #[error("cannot read the CA file {CA_FILE_PARAMETER}={path} ({reason})")]
    CaFile { path: String, reason: String },
}

/// A node to connect to.
#[derive(Debug, Clone)]
pub struct Target {
    pub uri: AMQPUri,
    pub tls: OwnedTLSConfig,
}

/// Pure: the URI of `url` and the CA file it names, if any.
pub fn parse(url: &str) -> Result<(AMQPUri, Option<PathBuf>), TargetError> {
    let mut uri: AMQPUri = url.parse().map_err(|e: String| {
        // lapin's message may quote the URL: only url's own errors, which
        // never do, are shown.
        TargetError::Invalid(
            url::Url::parse(url)
                .err()
                .map_or_else(|| first_words(&e), |e| e.to_string()),
        )
    })?;
    let parsed = url::Url::parse(url).map_err(|e| TargetError::Invalid(e.to_string()))?;
    match parsed.host() {
        Some(url::Host::Ipv4(ip)) => uri.authority.host = ip.to_string(),
        Some(url::Host::Ipv6(ip)) => uri.authority.host = ip.to_string(),
        Some(url::Host::Domain(_)) | None => {}
    }
    let ca_file = parsed
        .query_pairs()
        .find(|(key, _)| key == CA_FILE_PARAMETER)
        .map(|(_, path)| PathBuf::from(path.into_owned()));
    if ca_file.is_some() && uri.scheme != AMQPScheme::AMQPS {
        return Err(TargetError::CaFileWithoutTls);
    }
    uri.query.frame_max.get_or_insert(FRAME_MAX);
    Ok((uri, ca_file))
}

/// lapin's reason without what follows a quote (where a URL would be).
fn first_words(reason: &str) -> String {
    reason
        .split(['\'', '"'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Pure: whether a failed connection's error says the server's TLS
/// certificate was not trusted (rustls: "invalid peer certificate: ...").
pub fn is_untrusted_certificate(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    error.contains("certificate") || error.contains("unknownissuer")
}

/// The target of `url`, its CA file read.
pub fn target(url: &SecretUrl) -> Result<Target, TargetError> {
    let (uri, ca_file) = parse(url.expose())?;
    let cert_chain = ca_file.as_deref().map(read_ca_file).transpose()?;
    Ok(Target {
        uri,
        tls: OwnedTLSConfig {
            identity: None,
            cert_chain,
        },
    })
}

fn read_ca_file(path: &Path) -> Result<String, TargetError> {
    let error = |reason: String| TargetError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(error("no PEM certificate in it".to_owned()));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_size_asked_for_is_the_url_s_or_32_kib() {
        let (uri, _) = parse("amqp://u:p@10.0.0.5:5673/%2f").unwrap();
        assert_eq!(uri.query.frame_max, Some(FRAME_MAX));
        let (uri, _) = parse("amqp://u:p@10.0.0.5:5673/%2f?frame_max=131072").unwrap();
        assert_eq!(uri.query.frame_max, Some(131_072));
    }

    #[test]
    fn an_ip_address_is_kept_as_the_host() {
        // Why: lapin's own parser drops an IPv6 address (this fails once it
        // keeps it); an IPv4 one it keeps, as written.
        let lapin: AMQPUri = "amqp://u:p@[fd00::5]:5673/%2f".parse().unwrap();
        assert_eq!(lapin.authority.host, "localhost");
        let lapin: AMQPUri = "amqp://u:p@10.0.0.5:5673/%2f".parse().unwrap();
        assert_eq!(lapin.authority.host, "10.0.0.5");
        let (uri, ca) = parse("amqp://u:p@10.0.0.5:5673/%2f").unwrap();
        assert_eq!(uri.authority.host, "10.0.0.5");
        assert_eq!(uri.authority.port, 5673);
        assert_eq!(uri.vhost, "/");
        assert!(ca.is_none());
        let (uri, _) = parse("amqp://u:p@[::1]/v").unwrap();
        assert_eq!(uri.authority.host, "::1");
        let (uri, _) = parse("amqps://u:p@rabbit.example/v").unwrap();
        assert_eq!(uri.authority.host, "rabbit.example");
        assert_eq!(uri.authority.port, 5671);
    }

    #[test]
    fn the_ca_file_is_a_query_parameter_of_amqps_urls() {
        let (uri, ca) =
            parse("amqps://u:p@localhost:5671/%2f?cacertfile=/etc/ca.pem&heartbeat=5").unwrap();
        assert_eq!(ca.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(uri.query.heartbeat, Some(5));
        assert_eq!(
            parse("amqp://u:p@localhost/%2f?cacertfile=/etc/ca.pem").unwrap_err(),
            TargetError::CaFileWithoutTls
        );
    }

    #[test]
    fn a_bad_url_is_not_echoed() {
        for bad in [
            "amqp://u:hunter2@host:notaport/v",
            "http://u:hunter2@host/v",
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let missing = target(&SecretUrl::new(
            "amqps://u:hunter2@localhost/%2f?cacertfile=/nonexistent/ca.pem",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("cacertfile=/nonexistent/ca.pem"),
            "{missing}"
        );
        assert!(!missing.contains("hunter2"), "{missing}");
        let empty =
            std::env::temp_dir().join(format!("clerk-sync-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate").unwrap();
        let url = format!("amqps://u:p@localhost/%2f?cacertfile={}", empty.display());
        let error = target(&SecretUrl::new(url)).unwrap_err().to_string();
        std::fs::remove_file(&empty).ok();
        assert!(error.contains("no PEM certificate"), "{error}");
    }
}
