//! PostgreSQL access: the connection pool, database creation, migrations under an advisory lock,
//! readiness, and fresh throw-away databases for tests. Every connection goes through
//! [`tls::PgConfig`], so each honours its URL's `sslmode`.

pub mod statements;
pub mod tls;
mod tls_files;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};

pub use statements::Statements;
pub use tls::{ConnectError, PgConfig};

use crate::config::DatabaseUrl;

mod embedded {
    refinery::embed_migrations!("../sql");
}

/// Key of the advisory lock that serialises migrations when several services start at once.
const MIGRATION_LOCK_KEY: i64 = 0x4855_4d42_4558; // "HUMBEX"

/// Every wait on the database is bounded by this, so a request never hangs on a dead server.
pub const DB_WAIT: Duration = Duration::from_millis(1500);

/// A pool whose every wait (for a free connection, a new connection, a recycle) is bounded.
pub fn pool(url: &DatabaseUrl, max_size: usize) -> anyhow::Result<Pool> {
    let mut pg = url.pg_config();
    pg.connect_timeout(DB_WAIT);
    pg.keepalives_idle(Duration::from_secs(30));
    if pg.get_application_name().is_none() {
        pg.application_name("humbex");
    }
    let (pg, tls) = pg.parts();
    let manager = Manager::from_config(
        pg,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(DB_WAIT),
            create: Some(DB_WAIT),
            recycle: Some(DB_WAIT),
        })
        .build()?;
    Ok(pool)
}

/// One connection, driven in the background.
pub async fn connect(pg: &PgConfig) -> Result<tokio_postgres::Client, ConnectError> {
    let (client, connection) = pg.connect().await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = ?e, "database connection closed");
        }
    });
    Ok(client)
}

/// A dedicated LISTEN connection's settings (docs/design.md#listen-needs-its-own-connection):
/// named `application_name` so `pg_stat_activity` tells it apart, a bounded connect, and TCP
/// keepalives after 10 s idle, since a connection that only listens sends nothing of its own.
pub fn listen_config(pg: &PgConfig, application_name: &str) -> PgConfig {
    let mut pg = pg.clone();
    pg.application_name(application_name);
    pg.connect_timeout(Duration::from_secs(3));
    pg.keepalives_idle(Duration::from_secs(10));
    pg
}

/// Process-wide database settings from the configuration, applied once at start-up: with
/// DATABASE_DIRECT_URL set, DATABASE_URL is taken to be a transaction pooler and pooled statements
/// are sent unnamed (db/statements.rs).
pub fn apply_pooler_mode(config: &crate::config::DatabaseConfig) {
    if let Some(direct) = &config.direct_url {
        statements::use_unnamed_statements(direct.pg_config());
        tracing::info!("DATABASE_DIRECT_URL is set: pooled statements are sent unnamed");
    }
}

/// Start-up check: a connection that fails for TLS (the server refuses TLS under `require`, or its
/// certificate fails the check) is a configuration error that stops the process, naming the
/// variable and the mode. An unreachable server is not: services start and answer 503 until it
/// is back.
pub async fn check_tls(url: &DatabaseUrl) -> Result<(), ConnectError> {
    let mut pg = url.pg_config();
    pg.connect_timeout(Duration::from_secs(3));
    match tokio::time::timeout(Duration::from_secs(5), pg.connect()).await {
        Ok(Err(e)) if e.is_tls() => Err(e),
        _ => Ok(()),
    }
}

fn maintenance_config(url: &DatabaseUrl) -> (PgConfig, String) {
    let mut pg = url.pg_config();
    let name = pg.get_dbname().unwrap_or("postgres").to_owned();
    pg.dbname("postgres");
    pg.connect_timeout(Duration::from_secs(3));
    (pg, name)
}

/// Quote an identifier for SQL (CREATE DATABASE takes no bind parameter).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Create the URL's database if it does not exist yet. Returns true when it was created.
pub async fn ensure_database(url: &DatabaseUrl) -> anyhow::Result<bool> {
    let (pg, name) = maintenance_config(url);
    let client = connect(&pg).await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if exists {
        return Ok(false);
    }
    match client
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
        .await
    {
        Ok(()) => Ok(true),
        // Another service created it between our check and our CREATE: PostgreSQL reports that as
        // 42P04, or as 23505 on pg_database's unique index when both CREATEs run at once.
        Err(e)
            if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                || e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
        {
            Ok(false)
        }
        Err(e) => Err(anyhow::anyhow!("CREATE DATABASE {name}: {e:?}")),
    }
}

/// Apply sql/ migrations. refinery takes no lock of its own, so concurrent starters serialise on a
/// session advisory lock held on the same connection.
#[tracing::instrument(skip_all)]
pub async fn migrate(url: &DatabaseUrl) -> anyhow::Result<usize> {
    let mut client = connect(&url.pg_config()).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let result = embedded::migrations::runner().run_async(&mut client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let report = result.map_err(|e| anyhow::anyhow!("migration failed: {e:?}"))?;
    Ok(report.applied_migrations().len())
}

/// The newest migration version this build knows.
pub fn latest_migration_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// True when the database answers and carries every migration this build knows.
pub async fn is_ready(pool: &Pool) -> bool {
    let check = async {
        let client = pool.get().await.ok()?;
        let row = client
            .row_opt("SELECT max(version) AS version FROM refinery_schema_history", &[])
            .await
            .ok()??;
        let version: Option<i32> = row.get("version");
        Some(version.unwrap_or(0) >= latest_migration_version())
    };
    tokio::time::timeout(DB_WAIT, check)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// A fresh, migrated database for one test, dropped when the value is dropped.
///
/// The server comes from `TEST_DATABASE_URL` (default: the local PostgreSQL as user postgres).
pub struct TestDatabase {
    pub url: DatabaseUrl,
    name: String,
    admin: PgConfig,
}

impl TestDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        let server = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut admin = DatabaseUrl::parse_var("TEST_DATABASE_URL", &server)?.pg_config();
        admin.dbname("postgres");
        let name = format!("humbex_test_{}", uuid::Uuid::new_v4().simple());
        let client = connect(&admin).await?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let mut pg = admin.clone();
        pg.dbname(&name);
        // The server URL's parameters (sslmode, sslrootcert, ...) apply to the test database too,
        // so a bench can compare plaintext with TLS (`?sslmode=disable`).
        let mut url = pg_url(&pg);
        if let Some((_, params)) = server.split_once('?') {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(params);
        }
        let url = DatabaseUrl::parse(&url)?;
        migrate(&url).await?;
        Ok(TestDatabase { url, name, admin })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside a test's runtime, which may be shutting down: use a thread of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(client) = connect(&admin).await {
                        let _ = client
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

/// Render a tokio-postgres config back into a URL (host, port, user, password, database).
fn pg_url(pg: &tokio_postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "127.0.0.1".into(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let user = pg.get_user().unwrap_or("postgres");
    let password = pg
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let db = pg.get_dbname().unwrap_or("postgres");
    if host.starts_with('/') {
        format!("postgres://{user}{password}@localhost:{port}/{db}?host={host}")
    } else {
        format!("postgres://{user}{password}@{host}:{port}/{db}")
    }
}
