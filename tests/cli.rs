//! The `humbex` binary as a newcomer meets it: clear one-line configuration errors, the OpenAPI
//! document that openapi.json must equal, and migrations that several starters can run at once.

use std::process::Command;

fn humbex() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_humbex"));
    // A clean environment: only what each test sets.
    for var in [
        "DATABASE_URL",
        "BACKEND_HOST",
        "BACKEND_PORT",
        "TRADINGVIEW_SECRET",
        "ENCRYPTION_KEY_HEX",
        "ENCRYPTION_KEYS",
        "ENCRYPTION_PUBLIC_KEY",
        "ENCRYPTION_PRIVATE_KEY",
        "ADMIN_TOKEN",
        "BYBIT_ENV",
        "SYMBOLS",
        "LOG_FORMAT",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn bad_configuration_stops_start_up_with_one_line_naming_the_variable() {
    let good = [
        ("TRADINGVIEW_SECRET", "0123456789abcdef0123"),
        (
            "ENCRYPTION_KEY_HEX",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ),
        ("ADMIN_TOKEN", "admin-token-0123456789"),
    ];
    let cases = [
        (
            "ENCRYPTION_KEY_HEX",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",
        ),
        ("BYBIT_ENV", "live"),
        ("BACKEND_PORT", "abc"),
        ("LOG_FORMAT", "xml"),
    ];
    for (var, value) in cases {
        let out = humbex()
            .arg("ingest")
            .envs(good)
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{var}: {stderr}");
        assert!(lines[0].contains(var), "{var}: {stderr}");
        assert!(
            !stderr.contains(good[2].1) && !stderr.contains(good[0].1),
            "a secret was printed"
        );
    }
    // Outside paper mode a missing secret is fatal and says so (ingest needs the sealing key).
    let out = humbex()
        .arg("ingest")
        .env("BYBIT_ENV", "testnet")
        .env("TRADINGVIEW_SECRET", "0123456789abcdef0123")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("ENCRYPTION_PUBLIC_KEY") && stderr.contains("testnet"),
        "{stderr}"
    );
}

#[test]
fn keys_generate_prints_a_matching_pair() {
    let out = humbex().args(["keys", "generate"]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} missing: {stdout}"))
            .to_owned()
    };
    let (public, private) = (value("ENCRYPTION_PUBLIC_KEY"), value("ENCRYPTION_PRIVATE_KEY"));
    assert_ne!(public, private);
    let derived = humbex_shared::crypto::public_key::public_of(&private).unwrap();
    assert_eq!(derived.to_hex(), public);
}

#[test]
fn openapi_json_is_exactly_the_printed_document() {
    let out = humbex().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap();
    assert!(
        printed == committed,
        "openapi.json is stale: run `cargo run -- openapi > openapi.json`"
    );
}

#[tokio::test]
async fn concurrent_migrations_apply_once() {
    // A fresh, empty database, then four `humbex migrate` at once.
    let admin: humbex_shared::db::PgConfig = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
        .parse()
        .unwrap();
    let client = humbex_shared::db::connect(&admin).await.unwrap();
    let name = format!("humbex_test_migrate_{}", std::process::id());
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .unwrap();
    let mut url: tokio_postgres::Config = (*admin).clone();
    url.dbname(&name);
    let url = format!(
        "postgres://{}@{}:{}/{name}",
        admin.get_user().unwrap_or("postgres"),
        match &admin.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            _ => "127.0.0.1".into(),
        },
        admin.get_ports().first().copied().unwrap_or(5432)
    );
    let children: Vec<_> = (0..4)
        .map(|_| {
            humbex()
                .arg("migrate")
                .env("DATABASE_URL", &url)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // Logs into a pipe carry no ANSI colour codes.
        assert!(stderr.contains("migrations applied"), "{stderr}");
        assert!(!stderr.contains('\x1b'), "colour codes in piped logs: {stderr:?}");
    }
    let db = humbex_shared::db::connect(&url.parse().unwrap()).await.unwrap();
    let row = db
        .query_one(
            "SELECT count(*) AS n, max(version) AS latest FROM refinery_schema_history",
            &[],
        )
        .await
        .unwrap();
    // Each migration once: as many rows as files in sql/ (numbers may have gaps while parallel
    // branches hold theirs), up to the newest.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/sql"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".sql")
        })
        .count();
    assert_eq!(row.get::<_, i64>("n") as usize, files);
    assert_eq!(
        row.get::<_, Option<i32>>("latest"),
        Some(humbex_shared::db::latest_migration_version())
    );
    drop(db);
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}
