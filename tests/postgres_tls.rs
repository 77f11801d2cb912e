//! Every `sslmode` against a real PostgreSQL: first serving without TLS, then with a certificate
//! from a CA made at run time for `localhost` only. The pool and migrations go through the same
//! settings, and `humbex migrate` refuses a server without TLS under `require`. Client
//! certificates against a server whose pg_hba.conf demands them (`hostssl ... cert`), and libpq's
//! PGSSL* fallbacks, given through a lookup as the configuration reads them (never the process
//! environment, which other tests read).

mod support;

use std::time::{Duration, Instant};

use humbex_shared::config::{DatabaseUrl, database_config, database_url};
use humbex_shared::db::{self, ConnectError};
use support::tcp_postgres::{KeyForm, TcpPostgres, TestCa, work_dir};

/// Whether the session `url` opens is encrypted, as the server sees it.
async fn uses_tls(url: &str) -> Result<bool, ConnectError> {
    let url = DatabaseUrl::parse(url).expect("a valid URL");
    Ok(session(&url).await?.0)
}

/// Whether the session is encrypted, and the subject of the client certificate the server
/// accepted (if one was sent).
async fn session(url: &DatabaseUrl) -> Result<(bool, Option<String>), ConnectError> {
    let client = db::connect(&url.pg_config()).await?;
    let row = client
        .query_one(
            "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    Ok((row.get("ssl"), row.get("client_dn")))
}

/// Variables as the configuration reads them (`Lookup`, or a test's map).
fn vars(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: std::collections::HashMap<String, String> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    move |name| map.get(name).cloned()
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
    // PGSSLMODE applies when the URL has no sslmode (so require is refused here)...
    let lookup = vars(&[
        ("DATABASE_URL", at("127.0.0.1", "")),
        ("PGSSLMODE", "require".to_owned()),
    ]);
    let from_env = database_url(&lookup).unwrap();
    let err = session(&from_env).await.unwrap_err();
    assert!(err.is_tls(), "{err}");
    assert!(
        err.to_string().starts_with("DATABASE_URL (sslmode=require): "),
        "{err}"
    );
    // ...and the URL's sslmode wins over it.
    let lookup = vars(&[
        ("DATABASE_URL", at("127.0.0.1", "sslmode=disable")),
        ("PGSSLMODE", "require".to_owned()),
    ]);
    assert_eq!(
        session(&database_url(&lookup).unwrap()).await.unwrap(),
        (false, None)
    );
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

/// A server that accepts database `certdb` only with a client certificate its CA signed for the
/// user (`hostssl certdb all ... cert`): HUMBEX presents `sslcert`/`sslkey` (or PGSSLCERT and
/// PGSSLKEY), in each PEM key form, and without one is refused with the server's reason.
#[tokio::test]
async fn client_certificates_against_a_real_server() {
    let dir = work_dir("pg-tls-client");
    let ca = TestCa::create(&dir, "ca");
    let other = TestCa::create(&dir, "other-ca");
    let conf = format!("{}ssl_ca_file = '{}'\n", ca.server_conf(), ca.ca_cert.display());
    let pg = TcpPostgres::init(&dir, "data", &conf);
    pg.write_hba(
        "hostssl certdb all 127.0.0.1/32 cert\n\
         host certdb all 127.0.0.1/32 reject\n\
         host all all 127.0.0.1/32 trust\n",
    );
    pg.start();
    let admin = DatabaseUrl::parse(&pg.url("127.0.0.1", "postgres", "sslmode=require")).unwrap();
    let (client, connection) = admin.pg_config().connect().await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("CREATE DATABASE certdb").await.unwrap();
    drop(client);

    // The client's files are the test's own (root-owned when we are root; not the server's).
    let own = dir.join("client");
    let verify = format!("sslmode=verify-full&sslrootcert={}", ca.ca_cert.display());
    let with = |files: &support::tcp_postgres::ClientFiles| {
        format!(
            "{verify}&sslcert={}&sslkey={}",
            files.cert.display(),
            files.key.display()
        )
    };
    for (name, form) in [
        ("pkcs8", KeyForm::Pkcs8),
        ("sec1", KeyForm::Sec1),
        ("pkcs1", KeyForm::Pkcs1),
    ] {
        let files = ca.client(&own, name, "postgres", form);
        let url = DatabaseUrl::parse(&pg.url("localhost", "certdb", &with(&files))).unwrap();
        assert!(url.tls().client_cert);
        let (tls, dn) = session(&url).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(tls, "{name}");
        assert_eq!(dn.as_deref(), Some("/CN=postgres"), "{name}");
    }
    let good = ca.client(&own, "good", "postgres", KeyForm::Pkcs8);

    // Without a certificate the server refuses, and says why.
    let none = DatabaseUrl::parse(&pg.url("localhost", "certdb", &verify)).unwrap();
    assert!(!none.tls().client_cert);
    let err = session(&none).await.unwrap_err();
    assert!(err.is_tls(), "{err}");
    let err = err.to_string();
    assert!(err.starts_with("DATABASE_URL (sslmode=verify-full): "), "{err}");
    assert!(err.contains("requires a valid client certificate"), "{err}");
    assert!(err.contains("no client certificate is set"), "{err}");
    // The start-up check stops on it, as on any TLS misconfiguration.
    assert!(db::check_tls(&none).await.unwrap_err().is_tls());
    // A certificate from another CA fails the handshake: a TLS error naming the variable.
    let stranger = other.client(&own, "stranger", "postgres", KeyForm::Pkcs8);
    let url = DatabaseUrl::parse(&pg.url("localhost", "certdb", &with(&stranger))).unwrap();
    let err = session(&url).await.unwrap_err();
    assert!(err.is_tls(), "{err}");
    let err = err.to_string();
    assert!(err.starts_with("DATABASE_URL (sslmode=verify-full): "), "{err}");
    assert!(err.contains("UnknownCA"), "{err}");
    assert!(err.contains("refused this client certificate"), "{err}");

    // Half a pair is refused when the URL is read, naming the variable and the parameter.
    let half = format!("{verify}&sslcert={}", good.cert.display());
    let err = DatabaseUrl::parse(&pg.url("localhost", "certdb", &half))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("DATABASE_URL: "), "{err}");
    assert!(err.contains("sslcert=") && err.contains("no sslkey"), "{err}");
    // So are an unreadable file, and a key others can read (as libpq refuses it).
    let missing = format!(
        "{verify}&sslcert=/nonexistent/c.crt&sslkey={}",
        good.key.display()
    );
    let err = DatabaseUrl::parse(&pg.url("localhost", "certdb", &missing))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sslcert=/nonexistent/c.crt cannot be read"), "{err}");
    let mismatched = format!(
        "{verify}&sslcert={}&sslkey={}",
        good.cert.display(),
        stranger.key.display()
    );
    let err = DatabaseUrl::parse(&pg.url("localhost", "certdb", &mismatched))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot be used as a client certificate"), "{err}");
    use std::os::unix::fs::PermissionsExt;
    let open = ca.client(&own, "open", "postgres", KeyForm::Pkcs8);
    std::fs::set_permissions(&open.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = DatabaseUrl::parse(&pg.url("localhost", "certdb", &with(&open)))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&open.key.display().to_string()), "{err}");
    assert!(err.contains("group or world access"), "{err}");

    // PGSSLMODE, PGSSLROOTCERT, PGSSLCERT and PGSSLKEY, for the pool's URL and the direct one.
    let lookup = vars(&[
        ("DATABASE_URL", pg.url("localhost", "certdb", "")),
        (
            "DATABASE_DIRECT_URL",
            pg.url("localhost", "certdb", "application_name=direct"),
        ),
        ("PGSSLMODE", "verify-full".to_owned()),
        ("PGSSLROOTCERT", ca.ca_cert.display().to_string()),
        ("PGSSLCERT", good.cert.display().to_string()),
        ("PGSSLKEY", good.key.display().to_string()),
    ]);
    let config = database_config(&lookup).unwrap();
    for url in [&config.url, config.direct()] {
        let (tls, dn) = session(url)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", url.var()));
        assert!(tls && dn.as_deref() == Some("/CN=postgres"), "{}", url.var());
    }
    // The pool and migrations present it too.
    assert!(db::migrate(&config.url).await.unwrap() > 0);
    let pool = db::pool(&config.url, 2).unwrap();
    assert!(db::is_ready(&pool).await);
    drop(pool);
    drop(pg);
    let _ = std::fs::remove_dir_all(dir);
}
