//! TLS files for a test's own broker, made with `openssl`: a self-signed
//! CA and a server certificate it signed for `localhost` and `127.0.0.1`,
//! in a temporary folder removed when dropped.

use crate::cleanup::unique;
use crate::private_node::TlsListener;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub struct Certificates {
    dir: PathBuf,
    /// The CA that signed the server's certificate.
    pub listener: TlsListener,
}

impl Certificates {
    /// A CA named `ca_name` and a server certificate signed by it.
    pub fn make(ca_name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("clerk-sync-{}", unique("tls")));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = |name: &str| dir.join(name).display().to_string();
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca_name}"),
                "-keyout",
                &path("ca.key"),
                "-out",
                &path("ca.pem"),
            ],
        );
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                &path("server.key"),
                "-out",
                &path("server.csr"),
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName = DNS:localhost, IP:127.0.0.1\n\
             basicConstraints = CA:FALSE\n\
             keyUsage = digitalSignature, keyEncipherment\n\
             extendedKeyUsage = serverAuth\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                &path("server.csr"),
                "-CA",
                &path("ca.pem"),
                "-CAkey",
                &path("ca.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &path("server.ext"),
                "-out",
                &path("server.pem"),
            ],
        );
        let listener = TlsListener {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server.key"),
        };
        Self { dir, listener }
    }

    /// The CA's certificate (PEM): the file a client trusts.
    pub fn ca_file(&self) -> &Path {
        &self.listener.ca_file
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
