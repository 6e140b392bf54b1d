//! CPU time from `/proc` (Linux, USER_HZ 100), for benchmarks that report
//! what each process spent per event.

use std::collections::BTreeMap;
use std::time::Duration;

/// CPU time used so far: user + system of process `pid`, or user, system,
/// irq and softirq of all cores for `None`.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    match pid {
        Some(pid) => task_time(&format!("/proc/{pid}/stat"), USER_AND_SYSTEM),
        None => ticks(
            &std::fs::read_to_string("/proc/stat").ok()?,
            1,
            &[0, 1, 2, 5, 6],
        ),
    }
}

/// Let every thread of process `pid` (and those it starts later) run only
/// on `cpus`, a `taskset` list such as `"1"` or `"0-1"`.
pub fn pin(pid: u32, cpus: &str) -> std::io::Result<()> {
    let mut stderr = String::new();
    // `taskset -a` fails when one of the threads it lists ends before it
    // gets to it (a runtime's idle blocking threads do): tried again.
    for _ in 0..10 {
        let output = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", cpus, &pid.to_string()])
            .output()?;
        if output.status.success() {
            return Ok(());
        }
        stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if !stderr.contains("No such process") {
            break;
        }
    }
    Err(std::io::Error::other(format!(
        "taskset -a -p -c {cpus} {pid}: {stderr}"
    )))
}

/// The CPUs process `pid` may run on (`Cpus_allowed_list` of its status,
/// such as `0-1` or `0,2-3`), each once, in order.
pub fn allowed_cpus(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .map_or_else(Vec::new, cpu_list)
}

/// `0-2,5` as `[0, 1, 2, 5]`; what does not parse is left out.
fn cpu_list(list: &str) -> Vec<u32> {
    let mut cpus: Vec<u32> = list
        .trim()
        .split(',')
        .filter_map(|range| {
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            Some(first.trim().parse::<u32>().ok()?..=last.trim().parse::<u32>().ok()?)
        })
        .flatten()
        .collect();
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// CPU time used so far by the threads of process `pid` that run now,
/// summed by thread name (as the kernel keeps it: cut to 15 bytes).
pub fn cpu_time_by_thread(pid: u32) -> BTreeMap<String, Duration> {
    let mut times = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return times;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if let Some(time) = task_time(&path.join("stat").to_string_lossy(), USER_AND_SYSTEM) {
            *times.entry(name.trim().to_owned()).or_default() += time;
        }
    }
    times
}

/// The fields after the name of a `stat` file that hold user and system
/// time (utime, stime), and system time alone.
const USER_AND_SYSTEM: &[usize] = &[11, 12];
const SYSTEM: &[usize] = &[12];

/// The time in `fields` of the process or thread whose `stat` file is
/// `path`.
fn task_time(path: &str, fields: &[usize]) -> Option<Duration> {
    stat_time(&std::fs::read_to_string(path).ok()?, fields)
}

/// The time in `fields` of a `stat` line: "pid (name) state ppid ...", the
/// name possibly with spaces and parentheses of its own.
fn stat_time(stat: &str, fields: &[usize]) -> Option<Duration> {
    let (_, after_name) = stat.rsplit_once(") ")?;
    ticks(after_name, 0, fields)
}

/// The sum of `fields` (0-based, after skipping `skip` words) of the first
/// line of `text`, in ticks of 10 ms.
fn ticks(text: &str, skip: usize, fields: &[usize]) -> Option<Duration> {
    let values: Vec<_> = text.lines().next()?.split_whitespace().skip(skip).collect();
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
    task_time(&format!("/proc/{pid}/stat"), SYSTEM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_cpu_list_reads_as_the_kernel_writes_it() {
        assert_eq!(cpu_list("0-1\n"), vec![0, 1]);
        assert_eq!(cpu_list("0,2-3,7"), vec![0, 2, 3, 7]);
        assert_eq!(cpu_list("3"), vec![3]);
        assert_eq!(cpu_list("2-1,x,4-y,5"), vec![5]);
        assert_eq!(cpu_list(""), Vec::<u32>::new());
    }

    #[test]
    fn a_process_pinned_may_run_on_those_cpus_only() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let first = allowed_cpus(child.id()).first().copied().unwrap_or(0);
        let pinned = pin(child.id(), &first.to_string());
        let allowed = allowed_cpus(child.id());
        let _ = child.kill();
        let _ = child.wait();
        pinned.expect("pinned");
        assert_eq!(allowed, vec![first]);
    }

    #[test]
    fn this_process_may_run_on_at_least_one_cpu() {
        assert!(!allowed_cpus(std::process::id()).is_empty());
    }

    #[test]
    fn a_thread_that_works_is_counted_under_its_name_within_the_process() {
        let stop = Arc::new(AtomicBool::new(false));
        let spinning = stop.clone();
        let worker = std::thread::Builder::new()
            .name("cpu-test-spin".to_owned())
            .spawn(move || {
                while !spinning.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
            .expect("spawn a thread");
        let pid = std::process::id();
        let started = std::time::Instant::now();
        let mut threads = cpu_time_by_thread(pid);
        while threads.get("cpu-test-spin").copied().unwrap_or_default() < Duration::from_millis(50)
            && started.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(20));
            threads = cpu_time_by_thread(pid);
        }
        let process = cpu_time(Some(pid)).expect("this process's CPU time");
        stop.store(true, Ordering::Relaxed);
        worker.join().expect("the thread ends");
        let spun = threads.get("cpu-test-spin").copied().unwrap_or_default();
        assert!(spun >= Duration::from_millis(50), "{threads:?}");
        // The process's time, read after, holds its threads', give or take
        // the tick (10 ms) each is rounded to apart.
        let sum: Duration = threads.values().sum();
        let slack = Duration::from_millis(10) * (threads.len() as u32 + 1);
        assert!(sum <= process + slack, "{sum:?} > {process:?}");
    }

    #[test]
    fn a_stat_line_is_read_after_its_name_even_with_spaces_and_parentheses() {
        let stat = "42 (actix (x) wo) S 1 42 42 0 -1 4194560 0 0 0 0 150 30 0 0 20 0";
        assert_eq!(
            stat_time(stat, USER_AND_SYSTEM),
            Some(Duration::from_millis(1800))
        );
        assert_eq!(stat_time(stat, SYSTEM), Some(Duration::from_millis(300)));
    }
}
