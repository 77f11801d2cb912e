//! `humbex-bench <scenario>`: measures HUMBEX against the physical floor of its design on the same
//! PostgreSQL, prints a table and writes bench/results/<scenario>.json. Numbers, never assertions.

mod floor;
mod ingest_load;
mod report;

use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// Raw single-row INSERT+NOTIFY rate and latency on this PostgreSQL.
    Floor,
    /// POST /webhook at 1, 8 and 32 connections, beside the floor at the same concurrency.
    Ingest,
    /// A few seconds of everything, so CI keeps the bench compiling and running.
    Smoke,
}

#[derive(Debug, Parser)]
#[command(name = "humbex-bench")]
struct Args {
    scenario: Scenario,
    /// Seconds per measured step.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Repeat the scenario this many times and report the median of each row.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Where JSON results go.
    #[arg(long, default_value = "bench/results")]
    out_dir: String,
}

async fn run_once(scenario: Scenario, step: Duration) -> anyhow::Result<(&'static str, Vec<report::Row>)> {
    match scenario {
        Scenario::Floor => Ok(("floor", floor::run(&[1, 8, 32], step).await?)),
        Scenario::Ingest => {
            let mut rows = floor::run(&[1, 8, 32], step).await?;
            rows.extend(ingest_load::run(&[1, 8, 32], step).await?);
            Ok(("ingest", rows))
        }
        Scenario::Smoke => {
            let short = Duration::from_millis(500);
            let mut rows = floor::run(&[1], short).await?;
            rows.extend(ingest_load::run(&[2], short).await?);
            Ok(("smoke", rows))
        }
    }
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let step = Duration::from_secs_f64(args.seconds);
    let mut all_runs = Vec::new();
    let mut name = "";
    for run in 1..=args.runs.max(1) {
        let (scenario, mut rows) = runtime.block_on(run_once(args.scenario, step))?;
        report::compare_with_floor(&mut rows);
        if args.runs > 1 {
            report::print_table(&format!("{scenario} (run {run} of {})", args.runs), &rows);
        }
        name = scenario;
        all_runs.push(rows);
    }
    let medians = report::medians(&all_runs);
    report::print_and_save(name, &medians, &all_runs, &args.out_dir)?;
    Ok(())
}
