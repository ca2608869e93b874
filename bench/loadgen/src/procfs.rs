//! A process's CPU time and context switches, from Linux's /proc.

use std::fs;
use std::io;

/// Clock ticks per second of the times in /proc/PID/stat (`USER_HZ`, fixed
/// at 100 by the kernel's ABI on every architecture we run on; reading it
/// with sysconf would need unsafe code).
const USER_HZ: f64 = 100.0;

#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User + system CPU seconds of all threads, live and exited.
    pub cpu_s: f64,
    /// Voluntary + involuntary context switches, summed over the threads
    /// alive when read (/proc keeps no total for exited threads).
    pub ctx_switches: u64,
}

impl Usage {
    /// The usage of `pid` (a number, or `self`) so far.
    pub fn of(pid: &str) -> io::Result<Usage> {
        Ok(Usage {
            cpu_s: cpu_secs(pid)?,
            ctx_switches: ctx_switches(pid)?,
        })
    }

    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            cpu_s: (self.cpu_s - earlier.cpu_s).max(0.0),
            ctx_switches: self.ctx_switches.saturating_sub(earlier.ctx_switches),
        }
    }
}

fn cpu_secs(pid: &str) -> io::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name, in parentheses, may hold spaces: count the fields
    // after its closing parenthesis, where field 3 (state) is the first and
    // utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| bad(&stat))?;
    let mut fields = rest.split_whitespace().skip(11);
    let mut tick = || -> io::Result<u64> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad(&stat))
    };
    let (utime, stime) = (tick()?, tick()?);
    Ok((utime + stime) as f64 / USER_HZ)
}

fn ctx_switches(pid: &str) -> io::Result<u64> {
    let mut total = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread may end between listing and reading.
        let Ok(status) = task.and_then(|t| fs::read_to_string(t.path().join("status"))) else {
            continue;
        };
        for line in status.lines() {
            if let Some(n) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += n.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Ok(total)
}

fn bad(stat: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected /proc stat line: {stat}"),
    )
}
