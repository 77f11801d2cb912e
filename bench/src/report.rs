//! Percentiles, the printed table, and the JSON file with the machine and commit beside them.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub what: String,
    pub connections: usize,
    pub operations: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// For ingest rows: this rate as a share of the floor's at the same concurrency.
    pub share_of_floor: Option<f64>,
    /// For resource rows: resident memory in MiB (peak, VmHWM) and CPU seconds used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_mib: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
}

pub fn row(what: &str, connections: usize, mut latencies: Vec<Duration>, elapsed: Duration) -> Row {
    latencies.sort_unstable();
    let pick = |q: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    Row {
        what: what.to_owned(),
        connections,
        operations: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: pick(0.50),
        p90_ms: pick(0.90),
        p99_ms: pick(0.99),
        max_ms: pick(1.0),
        share_of_floor: None,
        rss_mib: None,
        cpu_s: None,
    }
}

/// Fill `share_of_floor` for every ingest row from the floor row at the same concurrency.
pub fn compare_with_floor(rows: &mut [Row]) {
    let floors: Vec<(usize, f64)> = rows
        .iter()
        .filter(|r| r.what.starts_with("floor: "))
        .map(|r| (r.connections, r.per_second))
        .collect();
    // Only the webhook rows: `all` also holds resource rows named after the ingest threads.
    for r in rows.iter_mut().filter(|r| r.what.starts_with("ingest: ")) {
        r.share_of_floor = floors
            .iter()
            .find(|(c, _)| *c == r.connections)
            .map(|(_, f)| r.per_second / f);
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} cores, {cpu}")
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Row by row, the median of each figure over several runs of the same scenario.
pub fn medians(runs: &[Vec<Row>]) -> Vec<Row> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    first
        .iter()
        .enumerate()
        .map(|(i, template)| {
            let column = |f: fn(&Row) -> f64| median(runs.iter().map(|r| f(&r[i])).collect());
            Row {
                what: template.what.clone(),
                connections: template.connections,
                operations: column(|r| r.operations as f64) as usize,
                per_second: column(|r| r.per_second),
                p50_ms: column(|r| r.p50_ms),
                p90_ms: column(|r| r.p90_ms),
                p99_ms: column(|r| r.p99_ms),
                max_ms: column(|r| r.max_ms),
                share_of_floor: template
                    .share_of_floor
                    .map(|_| column(|r| r.share_of_floor.unwrap_or(0.0))),
                rss_mib: template.rss_mib.map(|_| column(|r| r.rss_mib.unwrap_or(0.0))),
                cpu_s: template.cpu_s.map(|_| column(|r| r.cpu_s.unwrap_or(0.0))),
            }
        })
        .collect()
}

pub fn print_table(title: &str, rows: &[Row]) {
    println!("{title}");
    println!(
        "{:<46} {:>5} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "what", "conns", "ops", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms", "floor %"
    );
    for r in rows {
        println!(
            "{:<46} {:>5} {:>6} {:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>7}",
            r.what,
            r.connections,
            r.operations,
            r.per_second,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.share_of_floor
                .map(|s| format!("{:.0}%", s * 100.0))
                .unwrap_or_default()
        );
        if let (Some(rss), Some(cpu)) = (r.rss_mib, r.cpu_s) {
            println!("{:<46} peak RSS {rss:.1} MiB, CPU {cpu:.2} s", "");
        }
    }
}

fn print_markdown(rows: &[Row]) {
    println!(
        "| what | conns / subscribers | ops | per second | p50 ms | p90 ms | p99 ms | max ms | share of floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows.iter().filter(|r| r.rss_mib.is_none()) {
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.what,
            r.connections,
            r.operations,
            r.per_second,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.share_of_floor
                .map(|s| format!("{:.0}%", s * 100.0))
                .unwrap_or_else(|| "—".into())
        );
    }
    let resources: Vec<&Row> = rows.iter().filter(|r| r.rss_mib.is_some()).collect();
    if !resources.is_empty() {
        println!();
        println!("| role, during | peak RSS MiB | CPU s |");
        println!("|---|---|---|");
        for r in resources {
            println!(
                "| {} | {:.1} | {:.2} |",
                r.what,
                r.rss_mib.unwrap_or(0.0),
                r.cpu_s.unwrap_or(0.0)
            );
        }
    }
}

pub fn print_and_save(
    scenario: &str,
    medians: &[Row],
    runs: &[Vec<Row>],
    out_dir: &str,
) -> anyhow::Result<()> {
    let machine = machine();
    let commit = commit();
    println!();
    print_table(
        &format!(
            "scenario {scenario} · commit {commit} · {machine} · median of {} run(s)",
            runs.len()
        ),
        medians,
    );
    println!();
    print_markdown(medians);
    std::fs::create_dir_all(out_dir)?;
    let path = format!("{out_dir}/{scenario}.json");
    let doc = serde_json::json!({
        "scenario": scenario,
        "commit": commit,
        "machine": machine,
        "at": chrono::Utc::now().to_rfc3339(),
        "runs": runs.len(),
        "medians": medians,
        "each_run": runs,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")?;
    println!("written to {path}");
    Ok(())
}

/// The 1-minute load average, as text: printed beside every run because this machine is shared.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(what: &str, connections: usize, per_second: f64) -> Row {
        let mut r = row(what, connections, Vec::new(), Duration::from_secs(1));
        r.per_second = per_second;
        r
    }

    #[test]
    fn only_webhook_rows_are_compared_with_the_floor_at_their_concurrency() {
        let mut rows = vec![
            rate("floor: INSERT+NOTIFY (1 statement)", 1, 2000.0),
            rate("floor: INSERT+NOTIFY (1 statement)", 8, 4000.0),
            rate("ingest: POST /webhook → 202", 8, 3000.0),
            rate("ingest: POST /webhook → 202", 128, 3000.0),
            rate("ingest threads, during fan-out 1,000", 1, 1000.0),
        ];
        compare_with_floor(&mut rows);
        let shares: Vec<Option<f64>> = rows.iter().map(|r| r.share_of_floor).collect();
        assert_eq!(shares, vec![None, None, Some(0.75), None, None]);
    }
}
