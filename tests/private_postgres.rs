//! `humbex up`'s private PostgreSQL and root handling, with real processes: no TCP port, a socket
//! directory closed to others, a password even for a process that reaches the socket, a private
//! log; `up` started as root keeps serving as an unprivileged user, `ingest` refuses root.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use humbex::local_postgres::LocalPostgres;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh directory PostgreSQL (user postgres, when we are root) can reach.
fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("humbex-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn uid_of(name: &str) -> Option<u32> {
    let out = Command::new("id").args(["-u", name]).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn is_root() -> bool {
    humbex::privileges::is_root()
}

#[tokio::test]
async fn another_local_process_cannot_connect_without_the_password() {
    let dir = work_dir("pg-auth");
    let state = dir.join(".humbex");
    let port = free_port();
    let pg = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || LocalPostgres::start(&state, port))
            .await
            .unwrap()
            .unwrap()
    };
    let socket_dir = state.join("pg-socket");

    // No TCP listener at all.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // The socket's directory is closed to everyone but PostgreSQL's user; so is the log.
    let meta = std::fs::metadata(&socket_dir).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    if is_root() {
        assert_eq!(Some(meta.uid()), uid_of("postgres"));
    }
    let log = std::fs::metadata(state.join("pg.log")).unwrap();
    assert_eq!(log.permissions().mode() & 0o777, 0o600);

    // This test process reaches the socket (as root it can enter any directory), yet without the
    // password it is refused.
    let mut without: tokio_postgres::Config = tokio_postgres::Config::new();
    without
        .host_path(&socket_dir)
        .port(port)
        .user("postgres")
        .dbname("postgres");
    let err = without
        .connect(tokio_postgres::NoTls)
        .await
        .err()
        .expect("connected without a password");
    let mut wrong = without.clone();
    wrong.password("not-the-password");
    let err_wrong = wrong
        .connect(tokio_postgres::NoTls)
        .await
        .err()
        .expect("connected with a wrong password");
    assert!(
        err.to_string().contains("password") || err_wrong.as_db_error().is_some(),
        "{err}"
    );
    assert_eq!(
        err_wrong.as_db_error().map(|e| e.code().code()),
        Some("28P01"),
        "{err_wrong}"
    );

    // With the password from secrets.env it works.
    let secrets = humbex::paper_secrets::read(&state.join("secrets.env")).unwrap();
    let password = &secrets[humbex::local_postgres::PASSWORD_NAME];
    assert_eq!(password.len(), 64);
    let url: tokio_postgres::Config = pg.database_url("postgres").parse().unwrap();
    let (client, connection) = url.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    drop(client);

    tokio::task::spawn_blocking(move || pg.stop()).await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn up_started_as_root_serves_as_an_unprivileged_user() {
    if !is_root() {
        eprintln!("skipped: only meaningful when the tests run as root (as CI does)");
        return;
    }
    let dir = work_dir("up-root");
    let (backend_port, metrics_port) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_humbex"))
        .arg("up")
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // A port where nothing answers: `up` starts its private PostgreSQL.
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/humbex", free_port()),
        )
        .env("BACKEND_PORT", backend_port.to_string())
        .env("METRICS_PORT", metrics_port.to_string())
        .env("PAPER_PORT", free_port().to_string())
        .env("BYBIT_ENV", "paper")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stdout to its end on a thread (closing it early would break `up`'s later prints).
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if line.contains("HUMBEX is up") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("humbex up did not come up");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let uids: Vec<u32> = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|u| u.parse().unwrap())
        .collect();
    let postgres = uid_of("postgres").unwrap();
    assert_eq!(uids, vec![postgres; 4], "real, effective, saved and fs uid");
    // Every thread, not just the main one.
    for task in std::fs::read_dir(format!("/proc/{}/task", child.id())).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap_or_default();
        if let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) {
            assert!(!line.split_whitespace().skip(1).any(|u| u == "0"), "{line}");
        }
    }
    // One metrics port serves every role: the executor's LISTEN gauge and ingest's webhook counts.
    let refused = http(
        backend_port,
        "POST /webhook HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert!(refused.starts_with("HTTP/1.0 4"), "{refused}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let page = loop {
        let page = http(metrics_port, "GET /metrics HTTP/1.0\r\n\r\n");
        let refusals: f64 = page
            .lines()
            .filter(|l| l.starts_with(r#"humbex_webhooks_total{route="signed",outcome="rejected_"#))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if page.contains("\nhumbex_listen_connected 1\n") && refusals >= 1.0 {
            break page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metrics of `up` incomplete:\n{page}"
        );
        std::thread::park_timeout(Duration::from_millis(100));
    };
    assert!(page.contains("\nprocess_resident_memory_bytes "), "{page}");
    // SIGTERM: it stops, and stops its PostgreSQL, without root.
    assert!(
        Command::new("kill")
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "humbex up did not stop");
        std::thread::park_timeout(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(exit.success(), "{stderr}");
    assert!(stderr.contains("now runs as user postgres"), "{stderr}");
    assert!(
        !dir.join(".humbex/pg/postmaster.pid").exists(),
        "PostgreSQL still runs"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn ingest_as_root_is_refused_naming_the_override() {
    if !is_root() {
        eprintln!("skipped: only meaningful when the tests run as root (as CI does)");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_humbex"))
        .arg("ingest")
        .env_clear()
        .env("BYBIT_ENV", "paper")
        .env("TRADINGVIEW_SECRET", "0123456789abcdef0123")
        .env(
            "ENCRYPTION_KEY_HEX",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        )
        .env("ADMIN_TOKEN", "admin-token-0123456789")
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/humbex", free_port()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("as root") && stderr.contains("ALLOW_RUN_AS_ROOT=true"),
        "{stderr}"
    );
}

/// One HTTP/1.0 exchange with 127.0.0.1:`port` (the server closes the connection after answering).
fn http(port: u16, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}
