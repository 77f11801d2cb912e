//! Many accounts on one executor: `humbex executor` as its own process with `n` accounts, how
//! long until every private stream is open when connects are paced, and the process's peak memory
//! once they are (docs/deployment.md#several-executors).

use std::time::{Duration, Instant};

use crate::pipeline::Pipeline;
use crate::report::{Row, row};
use crate::resources::process_peak_rss;

/// Start an executor process over `accounts` accounts, opening at most `connects_per_minute`
/// streams a minute; measure the time until all are open and its peak RSS with them open.
pub async fn run(accounts: usize, connects_per_minute: u32) -> anyhow::Result<Vec<Row>> {
    let p = Pipeline::start().await?;
    let traders = p.traders(accounts, None).await?;
    let started = Instant::now();
    let child = p.executor_process_with(&[(
        "EXECUTOR_STREAM_CONNECTS_PER_MINUTE",
        connects_per_minute.to_string(),
    )])?;
    let pid = child.id();
    let result = measure(&p, pid, traders.len(), started, connects_per_minute).await;
    crate::pipeline::stop_process(child, Duration::from_secs(30)).await?;
    p.shutdown().await;
    result
}

async fn measure(
    p: &Pipeline,
    pid: u32,
    accounts: usize,
    started: Instant,
    connects_per_minute: u32,
) -> anyhow::Result<Vec<Row>> {
    // Every stream authenticated at the paper exchange, its own count.
    let deadline = started + Duration::from_secs(900);
    let mut halfway = None;
    loop {
        let open = p.paper.exchange().listening_accounts();
        if halfway.is_none() && open * 2 >= accounts {
            halfway = Some(started.elapsed());
        }
        if open >= accounts {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {open} of {accounts} private streams open after 900 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_open = started.elapsed();
    // Let the reconciliation each new stream triggers settle before reading the peak.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss = process_peak_rss(&pid.to_string());
    let mut open_row = row(
        &format!("{accounts} accounts: every stream open (connects ≤ {connects_per_minute}/min)"),
        1,
        vec![halfway.unwrap_or(all_open), all_open],
        all_open,
    );
    // Its rate is the streams opened per second over the whole start-up, process start included;
    // p50 is when half were open, max when all were.
    open_row.operations = accounts;
    open_row.per_second = accounts as f64 / all_open.as_secs_f64().max(1e-9);
    let mut rss_row = row(
        &format!("{accounts} accounts: executor peak RSS, streams open"),
        1,
        Vec::new(),
        all_open,
    );
    rss_row.operations = accounts;
    rss_row.rss_mib = Some(rss);
    Ok(vec![open_row, rss_row])
}
