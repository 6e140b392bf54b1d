//! What `DATABASE_URL` asks of TLS, decided without I/O: libpq's `sslmode`
//! (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`; `prefer`
//! when absent, as libpq) and `sslrootcert` (a PEM file of CA
//! certificates, or `system`), and the URL handed to tokio-postgres, which
//! knows only `disable`, `prefer` and `require` and refuses any parameter
//! it does not know.

use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_runtime::settings::SettingsError;
use std::path::PathBuf;

const SETTING: &str = "database.url";

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it, else in clear; the certificate is not
    /// checked.
    Prefer,
    /// TLS or nothing; the certificate is not checked (unless
    /// `sslrootcert` names a file: then as `verify-ca`, as libpq does).
    Require,
    /// TLS, the server's certificate chain checked against the CAs.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [
            Self::Disable,
            Self::Prefer,
            Self::Require,
            Self::VerifyCa,
            Self::VerifyFull,
        ]
        .into_iter()
        .find(|mode| mode.name() == value)
    }
}

/// Whose certificates a server's chain must lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// The operating system's CA certificates (`sslrootcert` absent or
    /// `system`).
    System,
    /// A PEM file of CA certificates (`sslrootcert=<file>`).
    File(PathBuf),
}

/// How a connection checks the server, as TLS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// No TLS at all.
    None,
    /// Encrypted, any certificate accepted.
    EncryptOnly,
    /// The chain checked against `RootCerts`, not the host name.
    Chain(RootCerts),
    /// The chain and the host name checked.
    ChainAndHost(RootCerts),
}

/// What a `DATABASE_URL` asks for, and the URL tokio-postgres is given.
#[derive(Debug, Clone)]
pub struct TlsRequest {
    pub mode: SslMode,
    pub check: Check,
    /// The URL without `sslrootcert`, with an `sslmode` tokio-postgres
    /// knows: `require` for every mode that checks certificates.
    pub client_url: SecretUrl,
}

impl TlsRequest {
    /// Read `sslmode` and `sslrootcert` from `url`'s query. Only the
    /// parameter's name is ever named in an error, never the URL.
    pub fn of(url: &SecretUrl) -> Result<Self, SettingsError> {
        let text = url.expose();
        let (base, query) = match text.split_once('?') {
            Some((base, query)) => (base, query),
            None => (text, ""),
        };
        let mut mode = None;
        let mut root = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value);
            match decode(key).as_str() {
                "sslmode" => {
                    mode = Some(SslMode::parse(&value).ok_or_else(|| {
                        invalid(
                            "sslmode must be one of disable, prefer, require, verify-ca, verify-full",
                        )
                    })?);
                }
                "sslrootcert" => {
                    if value.is_empty() {
                        return Err(invalid("sslrootcert names no file"));
                    }
                    root = Some(if value == "system" {
                        RootCerts::System
                    } else {
                        RootCerts::File(PathBuf::from(value))
                    });
                }
                "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                    return Err(invalid(
                        "client certificates and CRLs (sslcert, sslkey, sslpassword, sslcrl) are not supported",
                    ));
                }
                _ => kept.push(pair),
            }
        }
        let mode = mode.unwrap_or(SslMode::Prefer);
        let check = match (mode, root) {
            (SslMode::Disable, _) => Check::None,
            (SslMode::Prefer, _) | (SslMode::Require, None | Some(RootCerts::System)) => {
                Check::EncryptOnly
            }
            (SslMode::Require, Some(file)) => Check::Chain(file),
            (SslMode::VerifyCa, root) => Check::Chain(root.unwrap_or(RootCerts::System)),
            (SslMode::VerifyFull, root) => Check::ChainAndHost(root.unwrap_or(RootCerts::System)),
        };
        kept.push(match mode {
            SslMode::Disable => "sslmode=disable",
            SslMode::Prefer => "sslmode=prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "sslmode=require",
        });
        Ok(Self {
            mode,
            check,
            client_url: SecretUrl::new(format!("{base}?{}", kept.join("&"))),
        })
    }
}

fn invalid(problem: &str) -> SettingsError {
    SettingsError::invalid(SETTING, problem)
}

/// A query component, percent-decoded (`+` stays `+`, as libpq reads it).
fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("k={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "sslmode_tests.rs"]
mod tests;
