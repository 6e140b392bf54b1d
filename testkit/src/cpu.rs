//! CPU time from `/proc` (Linux, USER_HZ 100), for benchmarks that report
//! what each process spent per event.

use std::time::Duration;

/// CPU time used so far: user + system of process `pid`, or user, system,
/// irq and softirq of all cores for `None`.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let (path, skip, fields) = match pid {
        Some(pid) => (format!("/proc/{pid}/stat"), 0, [11, 12].as_slice()),
        None => ("/proc/stat".to_owned(), 1, [0, 1, 2, 5, 6].as_slice()),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // A process's fields follow its name: "pid (name) state ppid ...".
    let line = stat
        .rsplit_once(") ")
        .map_or(stat.as_str(), |(_, rest)| rest);
    let values: Vec<_> = line.lines().next()?.split_whitespace().skip(skip).collect();
    let ticks = fields
        .iter()
        .filter_map(|&i| values.get(i)?.parse::<u64>().ok());
    Some(Duration::from_millis(ticks.sum::<u64>() * 10))
}

/// The processes whose command name is `name` (e.g. `beam.smp`, `postgres`).
pub fn pids_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == name).then_some(pid)
        })
        .collect()
}

/// An Erlang VM running on this machine, if any.
fn beam_pid() -> Option<u32> {
    pids_named("beam.smp").into_iter().next()
}

/// CPU time so far of every process named `name` that is running now.
pub fn cpu_time_of_named(name: &str) -> Duration {
    pids_named(name)
        .into_iter()
        .filter_map(|pid| cpu_time(Some(pid)))
        .sum()
}

/// The process that listens on TCP `port` of this machine (from
/// `/proc/net/tcp*` and the processes' open sockets; root sees them all).
pub fn listening_pid(port: u16) -> Option<u32> {
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    // sl local_address rem_address st ... uid timeout inode
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let local_port = fields.get(1)?.rsplit_once(':')?.1;
                    let listening = fields.get(3)? == &"0A";
                    let inode = fields.get(9)?;
                    (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                        .then(|| format!("socket:[{inode}]"))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let processes = std::fs::read_dir("/proc").ok()?;
    processes.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        fds.flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target| {
                inodes
                    .iter()
                    .any(|inode| target.as_os_str() == inode.as_str())
            })
            .then_some(pid)
    })
}

/// The RabbitMQ node serving `amqp_url` if it runs on this machine: the
/// process listening on its port (5672 unless the URL says), else the
/// first Erlang VM found.
pub fn rabbitmq_pid(amqp_url: &str) -> Option<u32> {
    let port = url::Url::parse(amqp_url)
        .ok()
        .and_then(|url| url.port())
        .unwrap_or(5672);
    listening_pid(port).or_else(beam_pid)
}

/// System (kernel) CPU time so far of process `pid`: the part of
/// [`cpu_time`] spent in system calls and on its behalf.
pub fn system_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let ticks: u64 = rest.split_whitespace().nth(12)?.parse().ok()?;
    Some(Duration::from_millis(ticks * 10))
}
