//! A PostgreSQL server of the test's own, for tests that need server
//! settings the machine's server does not have (TLS, `pg_hba.conf` rules):
//! its own directory, port and socket, started with `initdb` and `pg_ctl`
//! (as the `postgres` user when the tests run as root, which PostgreSQL
//! refuses to run as; else as the tests' user), and stopped and removed when dropped (also on
//! panic). With TLS it has a CA and a server certificate made with
//! `openssl` for `localhost` and `127.0.0.1`.

use crate::cleanup::unique;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the PostgreSQL 15 server programs are.
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// What the server accepts over TCP (the unix socket always trusts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// `ssl = off`.
    Off,
    /// `ssl = on`; clear connections accepted too (`host` rule).
    On,
    /// `ssl = on` and only a `hostssl` rule: clear connections refused.
    Only,
}

#[derive(Debug)]
pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
}

impl PrivatePostgres {
    /// initdb, certificates, configuration, `pg_ctl start -w`. Every login
    /// over TCP from 127.0.0.1 is trusted (no password), as `tls` allows.
    pub fn start(tls: Tls) -> Self {
        let dir = std::env::temp_dir().join(unique("pg"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let server = Self {
            port: free_port(),
            dir,
        };
        server.give_to_postgres(&[&server.dir]);
        server.as_postgres(
            "initdb",
            &[
                "-D",
                &server.data().display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "--no-instructions",
            ],
        );
        let mut conf = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nshared_buffers = 16MB\nmax_connections = 30\n",
            server.port,
            server.dir.display()
        );
        if tls != Tls::Off {
            server.make_certificates();
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{0}/server.crt'\nssl_key_file = '{0}/server.key'\n",
                server.dir.display()
            ));
        }
        append(&server.data().join("postgresql.conf"), &conf);
        let rule = if tls == Tls::Only { "hostssl" } else { "host" };
        std::fs::write(
            server.data().join("pg_hba.conf"),
            format!("local all all trust\n{rule} all all 127.0.0.1/32 trust\n"),
        )
        .unwrap_or_else(|e| panic!("pg_hba.conf: {e}"));
        let log = server.dir.join("server.log");
        server.as_postgres(
            "pg_ctl",
            &[
                "-D",
                &server.data().display().to_string(),
                "-l",
                &log.display().to_string(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        server
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A CA that signed nothing of this server's (PEM), made on first use.
    pub fn unrelated_ca_file(&self) -> PathBuf {
        let path = self.dir.join("other-ca.crt");
        if !path.exists() {
            self.make_ca("other-ca", "clerk-sync test unrelated CA");
        }
        path
    }

    /// `postgres://postgres@{host}:{port}/{database}?{query}`.
    pub fn url(&self, host: &str, database: &str, query: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/{database}?{query}",
            self.port
        )
    }

    /// Run `sql` with psql as `postgres` over the unix socket (never TLS,
    /// allowed whatever the TCP rules say); its unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let output = Command::new(Path::new(BIN).join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ])
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(
            output.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn as_postgres(&self, program: &str, args: &[&str]) -> Output {
        run(server_command(program).args(args).current_dir(&self.dir))
    }

    /// As root, make `paths` the `postgres` user's (the server runs as it).
    fn give_to_postgres(&self, paths: &[&Path]) {
        if is_root() {
            run(Command::new("chown").arg("postgres:").args(paths));
        }
    }

    fn make_ca(&self, name: &str, subject: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={subject}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }

    /// ca.crt, and server.crt/server.key for localhost and 127.0.0.1
    /// signed by it; the key readable by `postgres` only.
    fn make_certificates(&self) {
        self.make_ca("ca", "clerk-sync test CA");
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            self.dir.join("server.ext"),
            "subjectAltName = DNS:localhost, IP:127.0.0.1\nbasicConstraints = CA:FALSE\n\
             keyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n",
        )
        .unwrap_or_else(|e| panic!("server.ext: {e}"));
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        self.give_to_postgres(&[&self.dir.join("server.key"), &self.dir.join("server.crt")]);
        run(Command::new("chmod")
            .arg("600")
            .arg(self.dir.join("server.key")));
    }

    fn openssl(&self, args: &[&str]) {
        run(Command::new("openssl").args(args).current_dir(&self.dir));
    }
}

impl Drop for PrivatePostgres {
    /// Stop the server (immediately: a test's data is not kept) and remove
    /// its directory.
    fn drop(&mut self) {
        let _ = server_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One of PostgreSQL's programs, to be run as the server's user.
fn server_command(program: &str) -> Command {
    let path = Path::new(BIN).join(program);
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// A port nothing listens on now (the server binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}
