//! The operator console in a real browser: ingest, an executor and the paper exchange on port 0,
//! and `tests/browser/console_flow.py` driving Debian's headless Chromium through Selenium (the
//! venv `.ci/run` makes: `/var/tmp/humbex-console-venv`, or HUMBEX_CONSOLE_PYTHON). Screenshots of
//! every page land in the target directory's `console-screenshots/`. Set HUMBEX_BROWSER_TESTS=0 to
//! skip locally; in CI (CI=true) a missing driver fails the test.

#[allow(dead_code)]
#[path = "pipeline/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::time::Duration;

use humbex_paper_exchange::AccountSpec;

const DEFAULT_PYTHON: &str = "/var/tmp/humbex-console-venv/bin/python";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_in_chromium() {
    if std::env::var("HUMBEX_BROWSER_TESTS").as_deref() == Ok("0") {
        eprintln!("\n*** SKIPPED: the console browser test (HUMBEX_BROWSER_TESTS=0) ***\n");
        return;
    }
    let python = std::env::var("HUMBEX_CONSOLE_PYTHON").unwrap_or_else(|_| DEFAULT_PYTHON.to_owned());
    for (what, path) in [
        ("the Selenium venv", python.as_str()),
        ("chromium", "/usr/bin/chromium"),
        ("chromedriver", "/usr/bin/chromedriver"),
    ] {
        assert!(
            std::path::Path::new(path).exists(),
            "{what} is missing at {path}: run the browser step of .ci/run (apt-get install chromium \
             chromium-driver; python3 -m venv /var/tmp/humbex-console-venv; \
             /var/tmp/humbex-console-venv/bin/pip install selenium==4.50.0), or set \
             HUMBEX_BROWSER_TESTS=0 to skip locally"
        );
    }
    let pipeline = harness::Pipeline::start(1).await;
    // The user's key, made on the (paper) exchange's side as a user makes one on Bybit's site.
    let api_key = format!("K{}", &uuid::Uuid::new_v4().simple().to_string()[..17]);
    let api_secret = format!("S{}", uuid::Uuid::new_v4().simple());
    pipeline
        .paper
        .exchange()
        .create_account(AccountSpec::new(
            api_key.clone(),
            api_secret.clone(),
            "10000".parse().unwrap(),
        ))
        .expect("paper account");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console_flow.py");
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .env("CONSOLE_BASE_URL", &pipeline.base)
        .env("CONSOLE_ADMIN_TOKEN", harness::ADMIN)
        .env("CONSOLE_PAPER_API_KEY", &api_key)
        .env("CONSOLE_PAPER_API_SECRET", &api_secret)
        .env("CONSOLE_SCREENSHOT_DIR", &shots)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser flow finishes within 4 minutes")
        .expect("the driver script starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all steps passed"), "{stdout}");

    // What the browser did is in the database, through the same operations as the API.
    let db = pipeline.db().await;
    let filled = db
        .query_one(
            "SELECT count(*) AS n FROM orders o JOIN users u ON u.id = o.user_id \
             WHERE u.email = 'browser@example.com' AND o.status = 'filled'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>("n");
    assert!(filled >= 1, "the browser's signal was filled");
    let revoked = db
        .query_one(
            "SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NOT NULL AND label LIKE '<script>%'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>("n");
    assert_eq!(revoked, 1);
    for page in [
        "sign-in",
        "overview",
        "user",
        "signals",
        "signal",
        "strategies",
        "strategy",
        "orders",
        "users",
        "users-phone",
    ] {
        assert!(shots.join(format!("{page}.png")).exists(), "screenshot {page}");
    }
}
