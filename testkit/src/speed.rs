//! How fast this machine is right now, for benchmarks to print beside
//! their figures: on a shared virtual machine the same code measured an
//! hour apart can differ by a factor of two, and a benchmark's own limits
//! move with it. The workload is what clerk-sync spends most of its time
//! near: one byte sent back and forth over loopback TCP between two
//! threads (system calls, the kernel's TCP, a wake-up on each side).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Round trips per second of one byte over loopback TCP, for `duration`.
pub fn loopback_round_trips(duration: Duration) -> std::io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut byte = [0_u8; 1];
        while stream.read(&mut byte)? == 1 {
            stream.write_all(&byte)?;
        }
        Ok(())
    });
    let mut client = TcpStream::connect(address)?;
    client.set_nodelay(true)?;
    let (started, mut trips, mut byte) = (Instant::now(), 0_u64, [1_u8; 1]);
    while started.elapsed() < duration {
        client.write_all(&byte)?;
        client.read_exact(&mut byte)?;
        trips += 1;
    }
    let rate = trips as f64 / started.elapsed().as_secs_f64();
    drop(client);
    echo.join()
        .map_err(|_| std::io::Error::other("the echo thread panicked"))??;
    Ok(rate)
}

/// "machine now: N loopback TCP round trips/s (...)", for a benchmark's
/// first lines; the error in words if the workload could not run.
pub fn report() -> String {
    match loopback_round_trips(Duration::from_millis(500)) {
        Ok(rate) => format!(
            "machine now: {rate:.0} loopback TCP round trips/s (one byte, two threads: \
             compare runs of different hours by it)"
        ),
        Err(e) => format!("machine now: the loopback round trips failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_are_counted() {
        let rate = loopback_round_trips(Duration::from_millis(50)).expect("loopback works");
        assert!(rate > 0.0, "{rate}");
    }
}
