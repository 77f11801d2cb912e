//! deploy/prometheus: the scrape configuration and the alert rules are valid for Debian's
//! Prometheus tools, and the rules fire (and stay quiet) as their unit tests say.

use std::path::Path;
use std::process::Command;

const PROMTOOL: &str = "/usr/bin/promtool";

fn promtool(args: &[&str]) -> String {
    assert!(
        Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: install Debian's prometheus package (.ci/run does)"
    );
    let out = Command::new(PROMTOOL)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_are_valid() {
    let rules: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
    assert!(!rules.is_empty());
    let mut args = vec!["check", "rules"];
    args.extend(rules.iter().map(String::as_str));
    let out = promtool(&args);
    assert!(out.contains("SUCCESS: 9 rules found"), "{out}");
}

#[test]
fn scrape_config_is_valid() {
    let out = promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);
    assert!(out.contains("is valid prometheus config file syntax"), "{out}");
}

#[test]
fn alert_rules_fire_as_their_unit_tests_say() {
    let out = promtool(&["test", "rules", "deploy/prometheus/humbex.rules.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every `humbex_*` or `process_*` name in `text` (a rule file, a dashboard).
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let starts = (text[i..].starts_with("humbex_") || text[i..].starts_with("process_"))
            && (i == 0 || !word(bytes[i - 1]));
        if starts {
            let end = (i..bytes.len()).find(|&j| !word(bytes[j])).unwrap_or(bytes.len());
            names.push(text[i..end].to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_rules_and_the_dashboard_use_only_metrics_humbex_exports() {
    let metrics = humbex_shared::metrics::metrics();
    // The endpoint family appears with the first exchange request.
    metrics.exchange_request("/v5/order/create", std::time::Duration::from_millis(1), None);
    let page = metrics.encode();
    let mut exported = Vec::new();
    for line in page.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = line.split_once(' ').unwrap();
        exported.push(name.to_owned());
        if kind == "histogram" {
            exported.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}")));
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = std::fs::read_to_string(root.join("deploy/prometheus/humbex.rules.yml")).unwrap();
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/humbex-dashboard.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() > 10));
    for (file, text) in [("rules", &rules), ("dashboard", &dashboard)] {
        let used = metric_names(text);
        assert!(used.len() > 5, "{file}: {used:?}");
        for name in used {
            assert!(
                exported.contains(&name),
                "{file} uses {name}, which HUMBEX does not export"
            );
        }
    }
}
