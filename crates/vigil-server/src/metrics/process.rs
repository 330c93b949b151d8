//! `process_resident_memory_bytes` and `process_cpu_seconds_total` (the
//! names Prometheus' own client libraries use), read from `/proc/self` at
//! scrape time: nothing runs between scrapes, and no extra dependency
//! (the prometheus crate's `process` feature pulls in procfs) is needed.
//! On systems without `/proc` the series are simply absent.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, IntGauge, Opts};

/// Clock ticks per second of the utime/stime fields in `/proc/self/stat`.
/// Linux fixes USER_HZ at 100 for userspace on every architecture we run on,
/// which spares a libc dependency for `sysconf(_SC_CLK_TCK)`.
const USER_HZ: f64 = 100.0;

pub struct ProcessCollector {
    rss: Gauge,
    cpu: Counter,
    threads: IntGauge,
    descs: Vec<Desc>,
}

impl ProcessCollector {
    pub fn new() -> Result<Self, prometheus::Error> {
        let rss = Gauge::with_opts(Opts::new(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
        ))?;
        let cpu = Counter::with_opts(Opts::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        ))?;
        let threads = IntGauge::with_opts(Opts::new("process_threads", "Number of OS threads."))?;
        let descs = [rss.desc(), cpu.desc(), threads.desc()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        Ok(Self {
            rss,
            cpu,
            threads,
            descs,
        })
    }
}

/// (rss bytes, cpu seconds, threads) from `/proc/self/{status,stat}`.
fn read_proc() -> Option<(f64, f64, i64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let rss_kb = field("VmRSS:")?;
    let threads = field("Threads:").unwrap_or(0.0) as i64;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after the last
    // ')' start at field 3 (state), so utime/stime (14, 15) are at 11, 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some((rss_kb * 1024.0, ticks / USER_HZ, threads))
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some((rss, cpu, threads)) = read_proc() else {
            return Vec::new();
        };
        self.rss.set(rss);
        // A counter only goes up; set it to the kernel's running total.
        let delta = cpu - self.cpu.get();
        if delta > 0.0 {
            self.cpu.inc_by(delta);
        }
        self.threads.set(threads);
        let mut out = self.rss.collect();
        out.extend(self.cpu.collect());
        out.extend(self.threads.collect());
        out
    }
}
