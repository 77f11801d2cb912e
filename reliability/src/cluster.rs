//! The system under test as separate processes: a private PostgreSQL cluster (so restarting it
//! disturbs nothing else), `humbex paper-exchange`, `humbex ingest` and any number of
//! `humbex executor`s, each started, killed with SIGKILL and restarted like in production.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use humbex::local_postgres::LocalPostgres;
use tokio::process::{Child, Command};

pub const SECRET: &str = "reliability-tradingview-secret-0123";
pub const ADMIN: &str = "reliability-admin-token-0123456789";
const ENCRYPTION_KEY: &str = "3131313131313131313131313131313131313131313131313131313131313131";

/// How long executors wait between sweeps in the suite (a lost NOTIFY costs at most this).
pub const POLL_INTERVAL_SECS: f64 = 1.0;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The humbex binary next to this one (build both: `cargo build -p humbex -p humbex-reliability`).
fn humbex_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name("humbex");
    anyhow::ensure!(
        path.is_file(),
        "{} not found: build it with `cargo build -p humbex -p humbex-reliability`",
        path.display()
    );
    Ok(path)
}

pub struct Cluster {
    pub pg: LocalPostgres,
    pub paper_port: u16,
    pub ingest_port: u16,
    binary: PathBuf,
    state_dir: PathBuf,
    paper: Option<Child>,
    ingest: Option<Child>,
    /// More ingest replicas (port, process), as behind a load balancer.
    replicas: Vec<(u16, Option<Child>)>,
    pub executors: Vec<Option<Child>>,
}

impl Cluster {
    /// A fresh private PostgreSQL, migrated, with the paper exchange and ingest running.
    pub async fn start(work_dir: &Path) -> anyhow::Result<Cluster> {
        let binary = humbex_binary()?;
        let state_dir = work_dir.to_path_buf();
        std::fs::create_dir_all(&state_dir)?;
        let pg_port = free_port();
        let dir = state_dir.clone();
        let pg = tokio::task::spawn_blocking(move || LocalPostgres::start(&dir, pg_port)).await??;
        let mut cluster = Cluster {
            pg,
            paper_port: free_port(),
            ingest_port: free_port(),
            binary,
            state_dir,
            paper: None,
            ingest: None,
            replicas: Vec::new(),
            executors: Vec::new(),
        };
        let status = cluster.command(&["migrate"]).status().await?;
        anyhow::ensure!(status.success(), "humbex migrate failed");
        cluster.paper = Some(cluster.command(&["paper-exchange"]).spawn()?);
        cluster
            .wait_http(&format!("{}/v5/market/time", cluster.paper_url()))
            .await?;
        cluster.ingest = Some(cluster.command(&["ingest"]).spawn()?);
        cluster
            .wait_http(&format!("{}/health", cluster.ingest_url()))
            .await?;
        Ok(cluster)
    }

    pub fn database_url(&self) -> String {
        self.pg.database_url("humbex")
    }

    pub fn paper_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.paper_port)
    }

    pub fn ingest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ingest_port)
    }

    /// Every ingest's base URL: the first one, then the replicas.
    pub fn ingest_urls(&self) -> Vec<String> {
        std::iter::once(self.ingest_port)
            .chain(self.replicas.iter().map(|(port, _)| *port))
            .map(|port| format!("http://127.0.0.1:{port}"))
            .collect()
    }

    /// Start one more ingest on its own port and wait until it answers.
    pub async fn start_ingest_replica(&mut self) -> anyhow::Result<()> {
        let port = free_port();
        let mut cmd = self.command(&["ingest"]);
        cmd.env("BACKEND_PORT", port.to_string());
        self.replicas.push((port, Some(cmd.spawn()?)));
        self.wait_http(&format!("http://127.0.0.1:{port}/health")).await
    }

    /// Stop ingest `index` (0 is the first, then the replicas) with SIGTERM as a deployment does,
    /// wait for it to exit, start it again on the same port and wait until it answers.
    pub async fn restart_ingest(&mut self, index: usize) -> anyhow::Result<()> {
        let port = if index == 0 {
            self.ingest_port
        } else {
            self.replicas[index - 1].0
        };
        let slot = if index == 0 {
            &mut self.ingest
        } else {
            &mut self.replicas[index - 1].1
        };
        if let Some(child) = slot.take() {
            terminate(child, &format!("ingest {index}")).await?;
        }
        let mut cmd = self.command(&["ingest"]);
        cmd.env("BACKEND_PORT", port.to_string());
        let child = cmd.spawn()?;
        if index == 0 {
            self.ingest = Some(child);
        } else {
            self.replicas[index - 1].1 = Some(child);
        }
        self.wait_http(&format!("http://127.0.0.1:{port}/health")).await
    }

    /// Stop an executor with SIGTERM (a graceful stop: it hands its accounts over) and wait until
    /// it has exited.
    pub async fn terminate_executor(&mut self, index: usize) -> anyhow::Result<()> {
        if let Some(child) = self.executors[index].take() {
            terminate(child, &format!("executor {index}")).await?;
        }
        Ok(())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.database_url())
            .env("BACKEND_HOST", "127.0.0.1")
            .env("BACKEND_PORT", self.ingest_port.to_string())
            // Several processes on one host: each takes a free metrics port.
            .env("METRICS_PORT", "0")
            .env("TRADINGVIEW_SECRET", SECRET)
            .env("ENCRYPTION_KEY_HEX", ENCRYPTION_KEY)
            .env("ADMIN_TOKEN", ADMIN)
            .env("BYBIT_ENV", "paper")
            // The suite runs as root on CI; the services it starts refuse root without this.
            .env("ALLOW_RUN_AS_ROOT", "true")
            .env("PAPER_HOST", "127.0.0.1")
            .env("PAPER_PORT", self.paper_port.to_string())
            .env("PAPER_ORDER_RATE_LIMIT", "50")
            .env("WORKER_POLL_INTERVAL", POLL_INTERVAL_SECS.to_string())
            // The suite sends far more than one trader would, all from 127.0.0.1.
            .env("RATE_LIMIT_SIGNALS_PER_MINUTE", "1000000")
            .env("RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE", "1000000")
            .env("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "1000000")
            .env("LOG_FORMAT", "json")
            .env(
                "RUST_LOG",
                std::env::var("RELIABILITY_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .current_dir(&self.state_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state_dir.join(format!("{}.log", args[0])));
        match log {
            Ok(file) => cmd.stderr(file),
            Err(_) => cmd.stderr(Stdio::null()),
        };
        cmd
    }

    async fn wait_http(&self, url: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        while Instant::now() < deadline {
            if http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{url} did not answer within 30 s")
    }

    /// Start one more executor, optionally armed with a failpoint; returns its index.
    pub fn start_executor(&mut self, failpoint: Option<&str>) -> anyhow::Result<usize> {
        let mut cmd = self.command(&["executor"]);
        if let Some(name) = failpoint {
            cmd.env("HUMBEX_FAILPOINT", name);
        }
        self.executors.push(Some(cmd.spawn()?));
        Ok(self.executors.len() - 1)
    }

    /// SIGKILL an executor (no chance to clean up), and wait until it is gone.
    pub async fn kill_executor(&mut self, index: usize) {
        if let Some(mut child) = self.executors[index].take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Wait for an armed executor to hit its failpoint and die.
    pub async fn wait_executor_exit(&mut self, index: usize, limit: Duration) -> bool {
        let Some(child) = self.executors[index].as_mut() else {
            return true;
        };
        let exited = tokio::time::timeout(limit, child.wait()).await.is_ok();
        if exited {
            self.executors[index] = None;
        }
        exited
    }

    pub async fn kill_all_executors(&mut self) {
        for i in 0..self.executors.len() {
            self.kill_executor(i).await;
        }
    }

    /// A direct connection to the private database.
    pub async fn db(&self) -> anyhow::Result<tokio_postgres::Client> {
        let pg: tokio_postgres::Config = self.database_url().parse()?;
        Ok(humbex_shared_connect(&pg).await?)
    }

    pub async fn stop(mut self) {
        self.kill_all_executors().await;
        let replicas = self.replicas.iter_mut().map(|(_, child)| child.take());
        let others: Vec<Option<Child>> = replicas.chain([self.ingest.take(), self.paper.take()]).collect();
        for child in others.into_iter().flatten() {
            let mut child = child;
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        self.pg.stop();
    }
}

async fn humbex_shared_connect(
    pg: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = pg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// SIGTERM a process and wait (at most 60 s: a debug build on a loaded machine is slow) for it to
/// exit.
async fn terminate(mut child: Child, what: &str) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
    }
    match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
        Ok(exited) => {
            exited?;
            Ok(())
        }
        Err(_) => {
            let _ = child.start_kill();
            anyhow::bail!("{what} did not stop within 60 s of SIGTERM")
        }
    }
}
