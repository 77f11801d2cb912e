//! The humbex binary as separate processes (paper exchange, ingest, executors) against a given
//! DATABASE_URL / DATABASE_DIRECT_URL, traders set up through the admin API, signed signals, and
//! the paper exchange as witness of what was really placed. Also PgBouncer in transaction mode.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use humbex_ingest::webhook::signature::sign_x_signature;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::tcp_postgres::{free_port, hand_over};

pub const SECRET: &str = "deploy-tradingview-secret-0123456789";
pub const ADMIN: &str = "deploy-admin-token-0123456789abcdef";

pub struct Services {
    pub dir: PathBuf,
    pub database_url: String,
    pub direct_url: Option<String>,
    pub paper_port: u16,
    pub ingest_port: u16,
    /// Seconds between the executor's sweeps.
    pub poll_interval: String,
    pub paper: Option<Child>,
    pub ingest: Option<Child>,
    pub executors: Vec<Child>,
}

impl Services {
    pub fn new(dir: &Path, database_url: String, direct_url: Option<String>) -> Services {
        Services {
            dir: dir.to_path_buf(),
            database_url,
            direct_url,
            paper_port: free_port(),
            ingest_port: free_port(),
            poll_interval: "60".into(),
            paper: None,
            ingest: None,
            executors: Vec::new(),
        }
    }

    pub fn command(&self, role: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_humbex"));
        cmd.arg(role)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("BACKEND_HOST", "127.0.0.1")
            .env("BACKEND_PORT", self.ingest_port.to_string())
            .env("TRADINGVIEW_SECRET", SECRET)
            .env("ENCRYPTION_KEY_HEX", "31".repeat(32))
            .env("ADMIN_TOKEN", ADMIN)
            .env("BYBIT_ENV", "paper")
            .env("ALLOW_RUN_AS_ROOT", "true")
            .env("PAPER_HOST", "127.0.0.1")
            .env("PAPER_PORT", self.paper_port.to_string())
            .env("WORKER_POLL_INTERVAL", &self.poll_interval)
            .env("RATE_LIMIT_SIGNALS_PER_MINUTE", "1000000")
            .env("RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE", "1000000")
            .env("RUST_LOG", "warn")
            // Each process its own metrics port: several run at once here.
            .env("METRICS_PORT", "0")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        if let Some(direct) = &self.direct_url {
            cmd.env("DATABASE_DIRECT_URL", direct);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{role}.log")))
            .unwrap();
        cmd.stderr(log);
        cmd
    }

    pub fn log(&self, role: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{role}.log"))).unwrap_or_default()
    }

    /// migrate, then the paper exchange and ingest (answering), then one executor.
    pub async fn start(&mut self) {
        let status = self.command("migrate").status().await.unwrap();
        assert!(status.success(), "migrate: {}", self.log("migrate"));
        self.paper = Some(self.command("paper-exchange").spawn().unwrap());
        wait_http(&format!("{}/v5/market/time", self.paper_url())).await;
        self.ingest = Some(self.command("ingest").spawn().unwrap());
        wait_http(&format!("{}/health", self.ingest_url())).await;
        self.start_executor();
    }

    pub fn start_executor(&mut self) {
        let child = self.command("executor").spawn().unwrap();
        self.executors.push(child);
    }

    pub fn paper_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.paper_port)
    }

    pub fn ingest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ingest_port)
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.ingest_url()))
            .bearer_auth(ADMIN);
        if !body.is_null() {
            request = request.json(&body);
        }
        let resp = request.send().await.unwrap();
        let status = resp.status();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    /// GET an admin path; panics unless 200. Returns the body.
    pub async fn admin_get(&self, path: &str) -> Value {
        self.admin(reqwest::Method::GET, path, Value::Null).await
    }

    /// A strategy followed by `n` traders, each with a key on the paper exchange. Returns the
    /// strategy's webhook token and the traders' API keys.
    pub async fn traders(&self, n: usize) -> (String, Vec<String>) {
        let strategy = self
            .admin(
                reqwest::Method::POST,
                "/admin/strategies",
                json!({ "name": format!("s-{}", uuid::Uuid::new_v4()) }),
            )
            .await;
        let sid = strategy["id"].as_str().unwrap().to_owned();
        let mut keys = Vec::new();
        for i in 0..n {
            let user = self
                .admin(
                    reqwest::Method::POST,
                    "/admin/users",
                    json!({ "email": format!("t{i}-{}@deploy.example", uuid::Uuid::new_v4().simple()) }),
                )
                .await;
            let id = user["id"].as_str().unwrap().to_owned();
            self.admin(
                reqwest::Method::PUT,
                &format!("/admin/users/{id}/subscription"),
                json!({ "status": "active", "strategy_id": sid }),
            )
            .await;
            let key = format!("DEP{}", &uuid::Uuid::new_v4().simple().to_string()[..15]);
            let secret = format!("SEC{}", uuid::Uuid::new_v4().simple());
            self.admin(
                reqwest::Method::POST,
                &format!("/admin/users/{id}/api-keys"),
                json!({ "api_key": key, "api_secret": secret }),
            )
            .await;
            keys.push(key);
        }
        (strategy["webhook_token"].as_str().unwrap().to_owned(), keys)
    }

    /// Send one signed signal; returns the status and the body.
    pub async fn signal(&self, token: &str, id: &str, action: &str) -> (u16, Value) {
        let body = json!({
            "token": token, "action": action, "symbol": "AVAXUSDT", "quantity": "1", "id": id,
        })
        .to_string();
        let resp = reqwest::Client::new()
            .post(format!("{}/webhook", self.ingest_url()))
            .header("content-type", "application/json")
            .header(
                "x-signature",
                sign_x_signature(SECRET.as_bytes(), body.as_bytes()),
            )
            .timeout(Duration::from_secs(10))
            .body(body)
            .send()
            .await;
        match resp {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (status, resp.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// orderLinkIds of the orders the paper exchange holds for `key`.
    pub async fn orders_at_exchange(&self, key: &str) -> Vec<(String, String)> {
        let orders: Value = reqwest::get(format!("{}/paper/accounts/{key}/orders", self.paper_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        orders
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|o| {
                (
                    o["order_link_id"].as_str().unwrap_or_default().to_owned(),
                    o["status"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    pub async fn stop(&mut self) {
        for mut child in self.executors.drain(..) {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        for child in [self.ingest.take(), self.paper.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

pub async fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::new();
    while !http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "{url} did not answer within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PgBouncer from the distribution, in transaction mode, in front of `pg_port`.
pub struct PgBouncer {
    pub port: u16,
    child: std::process::Child,
}

impl PgBouncer {
    pub fn start(dir: &Path, pg_port: u16, pool_size: u32) -> PgBouncer {
        let port = free_port();
        let dir = dir.join("pgbouncer");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("userlist.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host=127.0.0.1 port={pg_port}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {dir}/userlist.txt\npool_mode = transaction\n\
                 default_pool_size = {pool_size}\nmax_client_conn = 500\n\
                 logfile = {dir}/pgbouncer.log\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        hand_over(&dir);
        let ini = dir.join("pgbouncer.ini");
        let program = "/usr/sbin/pgbouncer";
        let mut command = if humbex::privileges::is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            std::process::Command::new(program)
        };
        let child = command
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer (apt-get install pgbouncer)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pgbouncer did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        PgBouncer { port, child }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // runuser passes SIGTERM on to pgbouncer.
        let _ = nix_kill(self.child.id());
        let _ = self.child.wait();
    }
}

fn nix_kill(pid: u32) -> std::io::Result<()> {
    let status = std::process::Command::new("kill").arg(pid.to_string()).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill failed"))
    }
}
