//! `humbex-bench <scenario>`: measures HUMBEX against the physical floor of its design on the same
//! PostgreSQL, prints a table and writes bench/results/<scenario>.json. Numbers, never assertions.

mod accounts;
mod console;
mod console_feed;
mod e2e;
mod floor;
mod ingest_load;
mod pipeline;
mod report;
mod resources;

use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Raw single-row INSERT+NOTIFY rate and latency on this PostgreSQL.
    Floor,
    /// POST /webhook at 1, 8 and 32 connections, beside the floor at the same concurrency.
    Ingest,
    /// POST /webhook at 1, 8, 32 and 128 connections, beside the floor.
    Throughput,
    /// Signals one at a time: webhook round trip, → order at the exchange, → fill recorded.
    Latency,
    /// One strategy signal to 100 subscribers (`fan-out-1000`: to 1,000).
    FanOut,
    /// One strategy signal to 1,000 subscribers.
    #[value(name = "fan-out-1000")]
    FanOut1000,
    /// 10,000 signals stored while the executor is down, then drained.
    Backlog,
    /// Peak RSS and CPU seconds of each role during fan-out to 1,000 and throughput.
    Resources,
    /// Each console page's time with 10,000 users and 1,000,000 signals in the database.
    Console,
    /// The console's live feed: `--feed-rate` signals a second (1,000) for `--feed-seconds` (10)
    /// with `--feed-readers` (8) browsers reading the event stream and one that never reads.
    #[value(name = "console-feed")]
    ConsoleFeed,
    /// One executor process over `--accounts` accounts (10,000): time until every private stream
    /// is open with paced connects (`--connects-per-minute`), and its peak RSS with them open.
    Accounts,
    /// One strategy signal to `--subscribers` subscribers (10,000) across `--executors` (3).
    #[value(name = "fan-out-fleet")]
    FanOutFleet,
    /// The backlog (`--backlog` signals) drained by one executor, then by `--executors` (2).
    #[value(name = "backlog-fleet")]
    BacklogFleet,
    /// Every scenario in turn, one summary table.
    All,
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
    /// Signals sent one at a time by `latency`.
    #[arg(long, default_value_t = 2_000)]
    signals: usize,
    /// Signals stored before the executor starts, for `backlog`.
    #[arg(long, default_value_t = 10_000)]
    backlog: usize,
    /// Users generated for `console`.
    #[arg(long, default_value_t = 10_000)]
    console_users: usize,
    /// Signals generated for `console`.
    #[arg(long, default_value_t = 1_000_000)]
    console_signals: usize,
    /// Browsers reading the event stream in `console-feed` (one more never reads).
    #[arg(long, default_value_t = 8)]
    feed_readers: usize,
    /// Signals a second sent by `console-feed`.
    #[arg(long, default_value_t = 1_000)]
    feed_rate: u32,
    /// Seconds `console-feed` sends for.
    #[arg(long, default_value_t = 10.0)]
    feed_seconds: f64,
    /// Accounts for `accounts`.
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// Private stream connects per minute for `accounts` (200 a second: 10,000 within a minute).
    #[arg(long, default_value_t = 12_000)]
    connects_per_minute: u32,
    /// Subscribers for `fan-out-fleet`.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Executors for `fan-out-fleet` (default 3) and `backlog-fleet` (default 2).
    #[arg(long)]
    executors: Option<usize>,
    /// Repeat the scenario this many times and report the median of each row.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Where JSON results go.
    #[arg(long, default_value = "bench/results")]
    out_dir: String,
}

async fn run_once(scenario: Scenario, args: &Args) -> anyhow::Result<(&'static str, Vec<report::Row>)> {
    let step = Duration::from_secs_f64(args.seconds);
    match scenario {
        Scenario::Floor => Ok(("floor", floor::run(&[1, 8, 32], step).await?)),
        Scenario::Ingest => {
            let mut rows = floor::run(&[1, 8, 32], step).await?;
            rows.extend(ingest_load::run(&[1, 8, 32], step).await?);
            Ok(("ingest", rows))
        }
        Scenario::Throughput => {
            // No floor at 128: PostgreSQL here allows 100 connections in all.
            let mut rows = floor::run(&[1, 8, 32], step).await?;
            rows.extend(ingest_load::run(&[1, 8, 32, 128], step).await?);
            Ok(("throughput", rows))
        }
        Scenario::Latency => Ok(("latency", e2e::latency(args.signals).await?)),
        Scenario::FanOut => Ok(("fan-out", e2e::fan_out(100, 1).await?)),
        Scenario::FanOut1000 => Ok(("fan-out-1000", e2e::fan_out(1_000, 1).await?)),
        Scenario::Backlog => Ok(("backlog", e2e::backlog(args.backlog, 1).await?)),
        Scenario::Accounts => Ok((
            "accounts",
            accounts::run(args.accounts, args.connects_per_minute).await?,
        )),
        Scenario::FanOutFleet => {
            let executors = args.executors.unwrap_or(3);
            Ok(("fan-out-fleet", e2e::fan_out(args.subscribers, executors).await?))
        }
        Scenario::BacklogFleet => {
            let mut rows = e2e::backlog(args.backlog, 1).await?;
            rows.extend(e2e::backlog(args.backlog, args.executors.unwrap_or(2)).await?);
            Ok(("backlog-fleet", rows))
        }
        Scenario::Resources => Ok(("resources", resources::run(step).await?)),
        Scenario::Console => Ok((
            "console",
            console::run(args.console_users, args.console_signals).await?,
        )),
        Scenario::ConsoleFeed => Ok((
            "console-feed",
            console_feed::run(
                args.feed_readers,
                args.feed_rate,
                Duration::from_secs_f64(args.feed_seconds),
            )
            .await?,
        )),
        Scenario::All => {
            let mut rows = Vec::new();
            for s in [
                Scenario::Throughput,
                Scenario::Latency,
                Scenario::FanOut,
                Scenario::FanOut1000,
                Scenario::Backlog,
                Scenario::Resources,
                Scenario::Console,
            ] {
                let (name, part) = Box::pin(run_once(s, args)).await?;
                report::print_table(name, &part);
                rows.extend(part);
            }
            Ok(("all", rows))
        }
        Scenario::Smoke => {
            let short = Duration::from_millis(500);
            let mut rows = floor::run(&[1], short).await?;
            rows.extend(ingest_load::run(&[2], short).await?);
            rows.extend(e2e::latency(50).await?);
            // Several executors sharing the accounts: a fan-out to 6 across 2.
            rows.extend(e2e::fan_out(6, 2).await?);
            Ok(("smoke", rows))
        }
    }
}

fn main() -> anyhow::Result<()> {
    humbex_bybit::ensure_crypto_provider();
    let args = Args::parse();
    // Profiling aid: HUMBEX_BENCH_TRACE=<filter> prints every closed span with its busy and idle
    // time to stderr (off by default: logging costs time the figures should not include).
    if let Ok(filter) = std::env::var("HUMBEX_BENCH_TRACE") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut all_runs = Vec::new();
    let mut name = "";
    for run in 1..=args.runs.max(1) {
        let before = report::load_average();
        let (scenario, mut rows) = runtime.block_on(run_once(args.scenario, &args))?;
        report::compare_with_floor(&mut rows);
        let after = report::load_average();
        println!("load average before {before}, after {after}");
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
