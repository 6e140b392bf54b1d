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

/// The local RabbitMQ's Erlang VM, if it runs on this machine.
pub fn beam_pid() -> Option<u32> {
    pids_named("beam.smp").into_iter().next()
}

/// CPU time so far of every process named `name` that is running now.
pub fn cpu_time_of_named(name: &str) -> Duration {
    pids_named(name)
        .into_iter()
        .filter_map(|pid| cpu_time(Some(pid)))
        .sum()
}
