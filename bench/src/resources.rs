//! Memory and CPU of each role with 1,000 accounts' private streams open: the executor as its own
//! `humbex executor` process (read from /proc/<pid>), ingest and the paper exchange as threads of
//! this process (their runtimes name their threads), during a fan-out to 1,000 and webhook load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::pipeline::{Pipeline, Trader, wait_for_fills};
use crate::report::{Row, row};

/// USER_HZ: the unit of utime and stime in /proc/*/stat on Linux.
const CLOCK_TICKS: f64 = 100.0;
const SUBSCRIBERS: usize = 1_000;
/// Accounts the webhook load rotates over (each is paced at 8 orders per second).
const LOAD_ACCOUNTS: usize = 200;
const LOAD_CONNECTIONS: usize = 32;

/// utime + stime in seconds, from a /proc stat line (the name in parentheses may hold spaces).
fn stat_cpu(stat: &str) -> f64 {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // After the name, field 3 (state) is index 0: utime (14) is 11 and stime (15) is 12.
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / CLOCK_TICKS
}

fn process_cpu(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| stat_cpu(&s))
        .unwrap_or(0.0)
}

/// VmHWM (peak resident set) of a process, in MiB.
pub(crate) fn process_peak_rss(pid: &str) -> f64 {
    process_memory(pid, "VmHWM:")
}

/// One memory line of a process's `/proc/<pid>/status` (`VmHWM:`, `VmRSS:`, given in KiB), in
/// MiB; 0 when it cannot be read.
pub(crate) fn process_memory(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// CPU seconds of this process's threads whose name starts with `role`.
fn threads_cpu(role: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter(|s| s.split_once('(').is_some_and(|(_, rest)| rest.starts_with(role)))
        .map(|s| stat_cpu(&s))
        .sum()
}

#[derive(Clone, Copy)]
struct Cpu {
    executor: f64,
    ingest: f64,
    paper: f64,
    whole: f64,
}

fn cpu(executor_pid: u32) -> Cpu {
    Cpu {
        executor: process_cpu(executor_pid),
        ingest: threads_cpu("ingest"),
        paper: threads_cpu("paper"),
        whole: process_cpu(std::process::id()),
    }
}

fn resource_row(what: String, operations: usize, per_second: f64, rss_mib: f64, cpu_s: f64) -> Row {
    let mut r = row(&what, 1, Vec::new(), Duration::from_secs(1));
    r.operations = operations;
    r.per_second = per_second;
    r.rss_mib = Some(rss_mib);
    r.cpu_s = Some(cpu_s);
    r
}

/// Rows for one phase: the executor's own peak RSS; the in-process roles share this process's.
fn phase_rows(phase: &str, pid: u32, before: Cpu, after: Cpu, ops: usize, rate: f64) -> Vec<Row> {
    let exec_rss = process_peak_rss(&pid.to_string());
    let bench_rss = process_peak_rss("self");
    vec![
        resource_row(
            format!("executor process, during {phase}"),
            ops,
            rate,
            exec_rss,
            after.executor - before.executor,
        ),
        resource_row(
            format!("ingest threads, during {phase}"),
            ops,
            rate,
            bench_rss,
            after.ingest - before.ingest,
        ),
        resource_row(
            format!("paper exchange threads, during {phase}"),
            ops,
            rate,
            bench_rss,
            after.paper - before.paper,
        ),
        resource_row(
            format!("whole bench process, during {phase}"),
            ops,
            rate,
            bench_rss,
            after.whole - before.whole,
        ),
    ]
}

pub async fn run(step: Duration) -> anyhow::Result<Vec<Row>> {
    let p = Pipeline::start().await?;
    let (strategy, token) = p.strategy("resources").await?;
    let subscribers = p.traders(SUBSCRIBERS, Some(&strategy)).await?;
    let direct = p.traders(LOAD_ACCOUNTS, None).await?;
    let child = p.executor_process()?;
    let pid = child.id();
    let result = measure(&p, pid, &token, &direct, step).await;
    crate::pipeline::stop_process(child, Duration::from_secs(15)).await?;
    drop(subscribers);
    p.shutdown().await;
    result
}

async fn measure(
    p: &Pipeline,
    pid: u32,
    strategy_token: &str,
    direct: &[Trader],
    step: Duration,
) -> anyhow::Result<Vec<Row>> {
    let started = Instant::now();
    p.wait_for_streams(SUBSCRIBERS + direct.len()).await?;
    let connect_s = started.elapsed().as_secs_f64();
    let mut rows = vec![resource_row(
        format!(
            "executor process, {} streams opened (in {connect_s:.1} s)",
            SUBSCRIBERS + direct.len()
        ),
        SUBSCRIBERS + direct.len(),
        0.0,
        process_peak_rss(&pid.to_string()),
        process_cpu(pid),
    )];

    let db = p.client().await?;
    let before = cpu(pid);
    let clock = Instant::now();
    let id = p.signal(strategy_token, "buy", "resources-fan-out").await?;
    wait_for_fills(
        &db,
        &[id],
        SUBSCRIBERS,
        Duration::from_millis(5),
        Duration::from_secs(120),
    )
    .await?;
    let took = clock.elapsed().as_secs_f64();
    rows.extend(phase_rows(
        "fan-out 1,000",
        pid,
        before,
        cpu(pid),
        SUBSCRIBERS,
        SUBSCRIBERS as f64 / took,
    ));

    let before = cpu(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let clock = Instant::now();
    let load = async {
        let tasks = (0..LOAD_CONNECTIONS).map(|c| {
            let (stop, sent) = (stop.clone(), sent.clone());
            async move {
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let t = &direct[i % direct.len()];
                    if p.signal(&t.token, "buy", &format!("res-{c}-{i}")).await.is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    i += LOAD_CONNECTIONS;
                }
            }
        });
        futures_util::future::join_all(tasks).await;
    };
    let window = async {
        tokio::time::sleep(step).await; // the measuring window itself
        stop.store(true, Ordering::Relaxed);
    };
    tokio::join!(load, window);
    let took = clock.elapsed().as_secs_f64();
    let n = sent.load(Ordering::Relaxed) as usize;
    rows.extend(phase_rows(
        &format!("webhooks at {LOAD_CONNECTIONS} conns"),
        pid,
        before,
        cpu(pid),
        n,
        n as f64 / took,
    ));
    Ok(rows)
}
