//! `humbex-reliability`: the fault-injection suite. Each scenario runs the real `humbex` binary as
//! separate processes (paper exchange, ingest, executors) on a private PostgreSQL, injects faults
//! while signals flow, and counts against the paper exchange's own record of orders.
//!
//! Build and run: `cargo build --release -p humbex -p humbex-reliability &&
//! target/release/humbex-reliability` (CI: `--quick`).

mod cluster;
mod notify;
mod scenarios;
mod traffic;

use std::time::Instant;

use clap::Parser;

use crate::cluster::Cluster;
use crate::scenarios::Scale;
use crate::traffic::Verdict;

#[derive(Parser)]
#[command(name = "humbex-reliability")]
struct Args {
    /// The short version CI runs (fewer kills, one restart).
    #[arg(long)]
    quick: bool,
    /// Run only the scenarios whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Kill trials for the random-kill scenario (default 50, or 10 with --quick).
    #[arg(long)]
    kills: Option<usize>,
}

type Scenario =
    for<'a> fn(
        &'a mut Cluster,
        Scale,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Verdict>> + 'a>>;

fn scenarios() -> Vec<(&'static str, Scenario)> {
    vec![
        ("kill-random", |c, s| Box::pin(scenarios::kill_random(c, s))),
        ("failpoints", |c, s| Box::pin(scenarios::failpoints(c, s))),
        ("listen-terminated", |c, s| {
            Box::pin(scenarios::listen_terminated(c, s))
        }),
        ("postgres-restart", |c, s| {
            Box::pin(scenarios::postgres_restart(c, s))
        }),
        ("many-executors", |c, s| Box::pin(scenarios::many_executors(c, s))),
        ("rolling-restart", |c, s| {
            Box::pin(scenarios::rolling_restart(c, s))
        }),
        ("exchange-faults", |c, s| {
            Box::pin(scenarios::exchange_faults(c, s))
        }),
        ("ingest-duplicates", |c, s| {
            Box::pin(scenarios::ingest_duplicates(c, s))
        }),
        ("notify-sender-killed", |c, s| {
            Box::pin(notify::sender_killed(c, s))
        }),
    ]
}

fn main() -> anyhow::Result<()> {
    humbex::telemetry::ensure_crypto_provider();
    let args = Args::parse();
    let scale = Scale {
        kill_trials: args.kills.unwrap_or(if args.quick { 10 } else { 50 }),
        quick: args.quick,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let started = Instant::now();
    let verdicts = runtime.block_on(async {
        let mut verdicts = Vec::new();
        for (name, run) in scenarios() {
            if args.only.as_deref().is_some_and(|only| !name.contains(only)) {
                continue;
            }
            let work = std::env::temp_dir().join(format!("humbex-reliability-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&work);
            eprintln!("scenario {name} …");
            let mut cluster = Cluster::start(&work).await?;
            let verdict = run(&mut cluster, scale).await;
            cluster.stop().await;
            match verdict {
                Ok(v) => {
                    eprintln!("  {}", if v.ok() { "ok" } else { "FAILED" });
                    let _ = std::fs::remove_dir_all(&work);
                    verdicts.push(v);
                }
                Err(e) => {
                    eprintln!("  error: {e:#} (logs kept in {})", work.display());
                    verdicts.push(Verdict {
                        scenario: name.to_owned(),
                        signals: 0,
                        expected: 0,
                        at_exchange: 0,
                        duplicates: 0,
                        lost: 1,
                        unconfirmed: 0,
                        settle_secs: 0.0,
                        note: format!("scenario error: {e:#}"),
                    });
                }
            }
        }
        Ok::<_, anyhow::Error>(verdicts)
    })?;
    print_table(&verdicts, started.elapsed().as_secs_f64());
    let failed = verdicts.iter().filter(|v| !v.ok()).count();
    println!("{} passed, {failed} failed", verdicts.len() - failed);
    anyhow::ensure!(failed == 0, "{failed} scenario(s) failed");
    Ok(())
}

fn print_table(verdicts: &[Verdict], secs: f64) {
    println!(
        "\n| scenario | signals | orders expected | at exchange | duplicates | lost | unconfirmed | settle s | notes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for v in verdicts {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            v.scenario,
            v.signals,
            v.expected,
            v.at_exchange,
            v.duplicates,
            v.lost,
            v.unconfirmed,
            v.settle_secs,
            v.note
        );
    }
    println!("\ntotal {secs:.0} s");
}
