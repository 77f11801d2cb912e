//! A real Prometheus (Debian's package; `.ci/run` installs it) scrapes this process's metrics
//! listener with the alert rules of deploy/prometheus loaded, and its query API reports the same
//! numbers the page shows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Pipeline, wait_for};
use crate::{Page, TURN, serve_metrics};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Killed and reaped when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start Prometheus with its own data directory, scraping `target` (host:port) every second and
/// evaluating the repository's alert rules.
fn start_prometheus(dir: &Path, target: &str) -> (Running, String) {
    assert!(
        Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} is missing: install Debian's prometheus package (.ci/run does)"
    );
    let rules = repo_root().join("deploy/prometheus/humbex.rules.yml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}\n\
         scrape_configs:\n  - job_name: humbex\n    static_configs:\n      - targets: ['{target}']\n",
        rules = rules.display()
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    (Running(child), format!("http://127.0.0.1:{port}"))
}

/// The value of an instant query's first sample, if Prometheus has one.
async fn query(http: &reqwest::Client, base: &str, promql: &str) -> Option<f64> {
    query_body(http, base, promql).await?["data"]["result"][0]["value"][1]
        .as_str()?
        .parse()
        .ok()
}

/// Prometheus's whole answer to an instant query.
async fn query_body(http: &reqwest::Client, base: &str, promql: &str) -> Option<Value> {
    // Every byte but unreserved ones percent-encoded (RFC 3986).
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let resp = http
        .get(format!("{base}/api/v1/query?query={encoded}"))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_numbers_and_loads_the_rules() {
    let _turn = TURN.lock().await;
    let url = serve_metrics().await;
    let target = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let p = Pipeline::start(1).await;
    let (_, token, _) = p.trader("prom@example.com", json!({}), "10000").await;
    for i in 0..2 {
        let s = p
            .signal(
                &token,
                json!({ "action": "buy", "quantity": "1", "id": format!("prom-{i}") }),
            )
            .await;
        assert_eq!(p.settled(&s).await, "done");
    }
    let series = r#"humbex_webhooks_total{route="signed",outcome="accepted"}"#;
    let expected = Page::scrape(&url).await.get(series);
    assert!(expected >= 2.0, "{expected}");

    let dir = std::env::temp_dir().join(format!("humbex-prometheus-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_prometheus, base) = start_prometheus(&dir, &target);
    let http = reqwest::Client::new();
    let scraped = wait_for(Duration::from_secs(60), || async {
        let value = query(&http, &base, series).await?;
        (value == expected).then_some(value)
    })
    .await;
    let log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    assert_eq!(
        scraped,
        Some(expected),
        "Prometheus never reported {series} = {expected}:\n{}",
        log()
    );
    assert_eq!(query(&http, &base, r#"up{job="humbex"}"#).await, Some(1.0));
    assert!(
        query(&http, &base, "process_resident_memory_bytes")
            .await
            .unwrap_or(0.0)
            > 0.0
    );

    // Every rule group of the repository's file is loaded and evaluated without error.
    let rules: Value = http
        .get(format!("{base}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let groups = rules["data"]["groups"].as_array().cloned().unwrap_or_default();
    assert!(!groups.is_empty(), "no rule group loaded:\n{}", log());
    let evaluated = wait_for(Duration::from_secs(30), || async {
        let rules: Value = http
            .get(format!("{base}/api/v1/rules"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let all: Vec<Value> = rules["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let healthy = all.iter().all(|r| r["health"] == "ok");
        (!all.is_empty() && healthy).then_some(all.len())
    })
    .await;
    assert!(
        evaluated.is_some(),
        "a rule is unhealthy or never evaluated:\n{rules}\n{}",
        log()
    );

    // Every query of the Grafana dashboard is PromQL this Prometheus accepts.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/grafana/humbex-dashboard.json")).unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let exprs: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().replace("$__rate_interval", "1m"))
        .collect();
    assert!(exprs.len() > 10);
    for expr in exprs {
        let answer = query_body(&http, &base, &expr).await.expect("an answer");
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
    }
    drop(_prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}
