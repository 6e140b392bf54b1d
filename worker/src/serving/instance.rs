//! This worker process as operators see it: its name in `clerk_sync`'s
//! tables and the URL of its metrics, health and readiness.

use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The host (a pod's name in Kubernetes), the pid, and a random part so
    /// that restarts never collide.
    pub name: String,
    /// Where its HTTP server listens.
    pub http: SocketAddr,
    host: String,
}

impl Instance {
    pub fn new(http: SocketAddr) -> Self {
        let host = host_name();
        let random = uuid::Uuid::new_v4().simple().to_string();
        Self {
            name: format!("{host}/{}/{}", std::process::id(), &random[..8]),
            http,
            host,
        }
    }

    /// The URL of its `/metrics`: the host's name stands for a wildcard
    /// address (`0.0.0.0`, `::`), which no one else can connect to.
    pub fn metrics_url(&self) -> String {
        metrics_url(&self.host, self.http)
    }
}

fn metrics_url(host: &str, http: SocketAddr) -> String {
    if http.ip().is_unspecified() {
        format!("http://{host}:{}/metrics", http.port())
    } else {
        format!("http://{http}/metrics")
    }
}

/// `HOSTNAME` (set by Kubernetes to the pod's name), else the kernel's.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_address_is_shown_by_the_host_name() {
        let any = SocketAddr::from(([0, 0, 0, 0], 9091));
        assert_eq!(metrics_url("worker-7", any), "http://worker-7:9091/metrics");
        let v6 = SocketAddr::from(([0_u16; 8], 9092));
        assert_eq!(metrics_url("h", v6), "http://h:9092/metrics");
        let one = SocketAddr::from(([10, 0, 0, 5], 9090));
        assert_eq!(metrics_url("h", one), "http://10.0.0.5:9090/metrics");
    }

    #[test]
    fn names_differ_between_instances() {
        let http = SocketAddr::from(([127, 0, 0, 1], 1));
        assert_ne!(Instance::new(http).name, Instance::new(http).name);
    }
}
