//! A RabbitMQ node of a test's own, for the tests that must change a
//! broker's settings (a memory alarm, a TLS listener): the machine's
//! RabbitMQ package run under another node name, on free ports, with its
//! data, logs, configuration and Erlang cookie in a temporary folder, as
//! `deploy/local/rabbitmq-cluster.sh` runs its nodes. The machine's own
//! node is never touched. Stopped, and its folder removed, when dropped
//! (even when the test panics).

use crate::cleanup::unique;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/lib/rabbitmq/bin";
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The files of a TLS listener (PEM).
#[derive(Debug, Clone)]
pub struct TlsListener {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug)]
pub struct PrivateNode {
    /// `name@localhost`, for `rabbitmqctl -n`.
    pub node: String,
    pub amqp_port: u16,
    /// The TLS listener's port, if the node has one.
    pub tls_port: Option<u16>,
    dist_port: u16,
    dir: PathBuf,
    /// The CPUs (a `taskset` list) the node's VM may run on, if limited.
    cpus: Option<String>,
}

/// A port free now (the node binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

impl PrivateNode {
    /// Start a node with a plain AMQP listener on 127.0.0.1 (blocks until
    /// it accepts connections).
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Start a node that also listens for AMQPS with `tls`.
    pub fn start_with(tls: Option<&TlsListener>) -> Self {
        Self::start_node(tls, None)
    }

    /// Start a node whose VM runs only on `cpus` (a `taskset` list, such
    /// as `"0"`): Erlang then starts one scheduler per CPU of the list.
    pub fn start_on_cpus(cpus: &str) -> Self {
        Self::start_node(None, Some(cpus.to_owned()))
    }

    fn start_node(tls: Option<&TlsListener>, cpus: Option<String>) -> Self {
        let name = unique("rmq");
        let dir = std::env::temp_dir().join(format!("clerk-sync-{name}"));
        let node = Self {
            node: format!("{name}@localhost"),
            amqp_port: free_port(),
            tls_port: tls.map(|_| free_port()),
            dist_port: free_port(),
            dir,
            cpus,
        };
        node.configure(tls);
        let server = format!("{BIN}/rabbitmq-server");
        let mut server = match &node.cpus {
            Some(cpus) => {
                let mut command = node.command("taskset");
                command.args(["-c", cpus, &server]);
                command
            }
            None => node.command(&server),
        };
        let server = server
            .arg("-detached")
            .output()
            .unwrap_or_else(|e| panic!("cannot run rabbitmq-server: {e}"));
        assert!(
            server.status.success(),
            "rabbitmq-server -detached failed: {}",
            String::from_utf8_lossy(&server.stderr)
        );
        let started = Instant::now();
        // await_startup fails at once until the node registered with epmd.
        while !node
            .ctl(&["await_startup", "--timeout", "60"])
            .status
            .success()
        {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "private RabbitMQ node {} did not start within {START_TIMEOUT:?}: see {}",
                node.node,
                node.dir.join("log").display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        node
    }

    fn configure(&self, tls: Option<&TlsListener>) {
        std::fs::create_dir_all(self.dir.join("log")).unwrap_or_else(|e| panic!("{e}"));
        let cookie = self.dir.join(".erlang.cookie");
        std::fs::write(&cookie, unique("cookie")).unwrap_or_else(|e| panic!("{e}"));
        set_owner_only(&cookie);
        std::fs::write(self.dir.join("rabbitmq-env.conf"), "").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(self.dir.join("enabled_plugins"), "[].\n").unwrap_or_else(|e| panic!("{e}"));
        let mut config = format!(
            "listeners.tcp.default = 127.0.0.1:{}\n\
             vm_memory_high_watermark.relative = 0.6\n\
             disk_free_limit.absolute = 50MB\n",
            self.amqp_port
        );
        if let (Some(tls), Some(port)) = (tls, self.tls_port) {
            config.push_str(&format!(
                "listeners.ssl.default = 127.0.0.1:{port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n",
                tls.ca_file.display(),
                tls.cert_file.display(),
                tls.key_file.display()
            ));
        }
        std::fs::write(self.dir.join("rabbitmq.conf"), config).unwrap_or_else(|e| panic!("{e}"));
    }

    /// A command of the RabbitMQ package with a clean environment naming
    /// this node: the machine's node's settings and cookie never leak in.
    fn command(&self, program: &str) -> Command {
        let dir = &self.dir;
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", dir)
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("ERL_CRASH_DUMP", dir.join("erl_crash.dump"))
            .current_dir(dir);
        command
    }

    /// `rabbitmqctl -n <this node> args...`, waited for.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.command(&format!("{BIN}/rabbitmqctl"))
            .arg("-n")
            .arg(&self.node)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run rabbitmqctl: {e}"))
    }

    /// [`Self::ctl`] that must succeed; its standard output.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let output = self.ctl(args);
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `amqp://guest:guest@127.0.0.1:{port}/%2f` (guest may log in over
    /// the loopback interface).
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    /// `amqps://guest:guest@{host}:{tls port}/%2f`.
    pub fn amqps_url(&self, host: &str) -> String {
        let port = self
            .tls_port
            .unwrap_or_else(|| panic!("node {} has no TLS listener", self.node));
        format!("amqps://guest:guest@{host}:{port}/%2f")
    }

    /// Where its data, logs and configuration live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PrivateNode {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop"]);
        // `stop` waits for the VM to exit; a VM that hangs is killed.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid"))
            && let Ok(pid) = pid.trim().parse::<u32>()
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn set_owner_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o400))
        .unwrap_or_else(|e| panic!("{e}"));
}
