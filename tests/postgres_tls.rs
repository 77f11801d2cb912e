//! Every `sslmode` against a real PostgreSQL: first serving without TLS, then with a certificate
//! from a CA made at run time for `localhost` only. The pool and migrations go through the same
//! settings, and `humbex migrate` refuses a server without TLS under `require`.

mod support;

use std::time::{Duration, Instant};

use humbex_shared::config::DatabaseUrl;
use humbex_shared::db::{self, ConnectError};
use support::tcp_postgres::{TcpPostgres, TestCa, work_dir};

/// Whether the session `url` opens is encrypted, as the server sees it.
async fn uses_tls(url: &str) -> Result<bool, ConnectError> {
    let url = DatabaseUrl::parse(url).expect("a valid URL");
    let client = db::connect(&url.pg_config()).await?;
    let row = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .expect("pg_stat_ssl");
    Ok(row.get("ssl"))
}

async fn refused(url: &str) -> String {
    match uses_tls(url).await {
        Ok(tls) => panic!("{url} connected (tls: {tls}) but should be refused"),
        Err(e) => {
            assert!(e.is_tls(), "{url}: not a TLS error: {e}");
            e.to_string()
        }
    }
}

#[tokio::test]
async fn every_sslmode_against_a_real_server() {
    let dir = work_dir("pg-tls");
    let ca = TestCa::create(&dir, "ca");
    let other = TestCa::create(&dir, "other-ca");
    let pg = TcpPostgres::init(&dir, "data", "ssl = off\n");
    pg.start();
    let at = |host: &str, params: &str| pg.url(host, "postgres", params);

    // A server without TLS: disable and prefer connect in plaintext; require is a clear error.
    assert!(!uses_tls(&at("127.0.0.1", "sslmode=disable")).await.unwrap());
    assert!(
        !uses_tls(&at("127.0.0.1", "")).await.unwrap(),
        "prefer is the default"
    );
    let message = refused(&at("127.0.0.1", "sslmode=require")).await;
    assert!(
        message.starts_with("DATABASE_URL (sslmode=require): "),
        "{message}"
    );
    assert!(message.contains("server does not support TLS"), "{message}");
    // The start-up check says the same, and `humbex migrate` stops with it.
    let verify_full = format!("sslmode=verify-full&sslrootcert={}", ca.ca_cert.display());
    let url = DatabaseUrl::parse(&at("localhost", &verify_full)).unwrap();
    let startup = db::check_tls(&url).await.unwrap_err().to_string();
    assert!(
        startup.starts_with("DATABASE_URL (sslmode=verify-full)"),
        "{startup}"
    );
    let migrate = std::process::Command::new(env!("CARGO_BIN_EXE_humbex"))
        .arg("migrate")
        .env(
            "DATABASE_URL",
            pg.url("127.0.0.1", "humbex_tls", "sslmode=require"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&migrate.stderr);
    assert!(!migrate.status.success());
    assert!(stderr.contains("DATABASE_URL (sslmode=require)"), "{stderr}");

    // Now serve TLS (ssl is re-read on reload).
    pg.append_conf(&ca.server_conf());
    pg.reload();
    let deadline = Instant::now() + Duration::from_secs(20);
    while uses_tls(&at("127.0.0.1", "sslmode=require")).await.is_err() {
        assert!(Instant::now() < deadline, "the server never started TLS");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let root = |path: &std::path::Path| format!("sslrootcert={}", path.display());
    let (good, bad) = (root(&ca.ca_cert), root(&other.ca_cert));

    assert!(!uses_tls(&at("127.0.0.1", "sslmode=disable")).await.unwrap());
    assert!(uses_tls(&at("127.0.0.1", "sslmode=prefer")).await.unwrap());
    // require encrypts without checking the certificate...
    assert!(uses_tls(&at("127.0.0.1", "sslmode=require")).await.unwrap());
    // ...unless a root certificate is given: then it checks the chain, as libpq does.
    assert!(
        uses_tls(&at("127.0.0.1", &format!("sslmode=require&{good}")))
            .await
            .unwrap()
    );
    refused(&at("localhost", &format!("sslmode=require&{bad}"))).await;

    // verify-ca: the chain, whatever the name (the certificate is for localhost only).
    assert!(
        uses_tls(&at("127.0.0.1", &format!("sslmode=verify-ca&{good}")))
            .await
            .unwrap()
    );
    let message = refused(&at("localhost", &format!("sslmode=verify-ca&{bad}"))).await;
    assert!(
        message.starts_with("DATABASE_URL (sslmode=verify-ca): "),
        "{message}"
    );

    // verify-full: the chain and the name.
    assert!(
        uses_tls(&at("localhost", &format!("sslmode=verify-full&{good}")))
            .await
            .unwrap()
    );
    let message = refused(&at("127.0.0.1", &format!("sslmode=verify-full&{good}"))).await;
    assert!(message.contains("not valid for name \"127.0.0.1\""), "{message}");
    refused(&at("localhost", &format!("sslmode=verify-full&{bad}"))).await;

    // verify-* without any root certificate is refused when the URL is read.
    let home_root = std::env::var_os("HOME")
        .map(|h| std::path::Path::new(&h).join(".postgresql/root.crt"))
        .is_some_and(|p| p.exists());
    if !home_root {
        let err = DatabaseUrl::parse(&at("localhost", "sslmode=verify-full")).unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
        assert!(err.to_string().contains("sslrootcert"), "{err}");
    }
    let err = DatabaseUrl::parse(&at(
        "localhost",
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    ))
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

    // Database creation, migrations and the pool all use the URL's TLS.
    let url = DatabaseUrl::parse(&pg.url("localhost", "humbex_tls", &format!("sslmode=verify-full&{good}")))
        .unwrap();
    db::check_tls(&url).await.unwrap();
    assert!(db::ensure_database(&url).await.unwrap());
    assert!(db::migrate(&url).await.unwrap() > 0);
    let pool = db::pool(&url, 2).unwrap();
    assert!(db::is_ready(&pool).await);
    let client = pool.get().await.unwrap();
    let row = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .unwrap();
    assert!(row.get::<_, bool>("ssl"));
    drop(client);
    drop(pool);
    drop(pg);
    let _ = std::fs::remove_dir_all(dir);
}
