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
