//! `humbex up`: the whole product in one process on a fresh machine. Paper mode generates missing
//! secrets, a local PostgreSQL is started when none answers, migrations run, every role starts, and
//! the banner says how to send a first signal.

use std::time::Duration;

use crate::local_postgres::LocalPostgres;
use crate::paper_secrets;
use humbex_shared::api_key_vault::Opener;
use humbex_shared::config::{BybitEnv, DatabaseUrl, GENERATED_SECRETS, Lookup};

/// Stops the private PostgreSQL when `up` ends, however it ends.
struct StopOnDrop(Option<LocalPostgres>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pg) = self.0.take() {
            pg.stop();
        }
    }
}

/// Whether a server answers at `url` (with the URL's TLS). A TLS failure is an error: a server is
/// there, but not as DATABASE_URL asks, and starting a private one beside it would hide that.
async fn server_answers(url: &DatabaseUrl) -> anyhow::Result<bool> {
    let mut pg = url.with_dbname("postgres");
    pg.connect_timeout(Duration::from_secs(2));
    match tokio::time::timeout(Duration::from_secs(3), pg.connect()).await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) if e.is_tls() => Err(e.into()),
        // An authentication or database error still means a server is there.
        Ok(Err(e)) => Ok(e.as_db_error().is_some()),
        Err(_) => Ok(false),
    }
}

fn local_port(url: &DatabaseUrl) -> Option<u16> {
    let pg = url.pg_config();
    let local = pg.get_hosts().iter().all(|h| match h {
        tokio_postgres::config::Host::Tcp(h) => h == "127.0.0.1" || h == "localhost" || h == "::1",
        tokio_postgres::config::Host::Unix(_) => false,
    });
    local.then(|| pg.get_ports().first().copied().unwrap_or(5432))
}

pub async fn run(lookup: Lookup) -> anyhow::Result<()> {
    let bybit_env = lookup.bybit_env()?;
    let secrets_path = paper_secrets::default_path();
    let mut generated = Vec::new();
    if bybit_env == BybitEnv::Paper {
        let (_, names) =
            paper_secrets::ensure(&secrets_path, &GENERATED_SECRETS, |n| lookup.get(n).is_some())?;
        generated = names;
    }
    let lookup = lookup.with_secrets_file()?;
    let mut config = lookup.config()?;
    bybit_env.warn_if_mainnet();

    let url = config.database.url.clone();
    let mut local_pg = StopOnDrop(None);
    if !server_answers(&url).await? {
        let port = local_port(&url).ok_or_else(|| {
            anyhow::anyhow!(
                "no PostgreSQL answers at {} (and it is not local, so none is started)",
                url.redacted()
            )
        })?;
        eprintln!(
            "No PostgreSQL answers at {}; starting a private one under ./.humbex/pg …",
            url.redacted()
        );
        let state_dir = std::path::PathBuf::from(paper_secrets::STATE_DIR);
        let pg = tokio::task::spawn_blocking(move || LocalPostgres::start(&state_dir, port)).await??;
        // From here on the services reach it through its socket, with its password.
        let dbname = url.pg_config().get_dbname().unwrap_or("humbex").to_owned();
        config.database.url = DatabaseUrl::parse(&pg.database_url(&dbname))?;
        config.database.direct_url = None;
        local_pg.0 = Some(pg);
    }
    // Migrations hold a session advisory lock: DATABASE_DIRECT_URL when DATABASE_URL is a pooler.
    let url = config.database.direct().clone();
    humbex_shared::db::apply_pooler_mode(&config.database);
    if humbex_shared::db::ensure_database(&url).await? {
        tracing::info!(database = %url.redacted(), "database created");
    }
    let applied = humbex_shared::db::migrate(&url).await?;
    tracing::info!(applied, "migrations applied");

    // Paper mode: the local Bybit stand-in runs in this process (PAPER_HOST, PAPER_PORT, …).
    let paper = if bybit_env == BybitEnv::Paper {
        let config = humbex_paper_exchange::PaperExchangeConfig::from_lookup(&|n| lookup.get(n))?;
        Some(humbex_paper_exchange::spawn(config).await?)
    } else {
        None
    };

    let executor = crate::roles::build_executor(&config)?;
    let config_balance = config.bybit.paper_balance_usdt;
    let opener = config.secrets.opener()?.clone();
    let app = humbex_ingest::Application::build(config).await?;
    let addr = app.local_addr();
    if let Some(paper) = &paper {
        let restored = restore_paper_accounts(&app.state(), &opener, paper, config_balance).await?;
        if restored > 0 {
            tracing::info!(restored, "stored API keys registered on the paper exchange");
        }
    }
    let demo_token = if bybit_env == BybitEnv::Paper {
        let state = app.state();
        let existing = lookup.file_value("DEMO_WEBHOOK_TOKEN");
        match humbex_ingest::admin::users::ensure_demo_user(&state.pool, existing).await? {
            Some(demo) => {
                if demo.created {
                    let mut values = paper_secrets::read(&secrets_path)?;
                    values.insert("DEMO_WEBHOOK_TOKEN".into(), demo.token.clone());
                    paper_secrets::write(&secrets_path, &values)?;
                    let masked = add_demo_paper_key(&state, demo.id).await?;
                    println!(
                        "Demo user created with a paper API key ({masked}, balance {} USDT on the paper exchange).",
                        config_balance
                    );
                }
                Some(demo.token)
            }
            None => None,
        }
    } else {
        None
    };

    // Before the banner: whoever reads it may send SIGTERM at once.
    let shutdown = humbex_shared::shutdown::Shutdown::on_signal();
    leave_root(local_pg.0.as_ref())?;
    print_banner(
        addr,
        bybit_env,
        &generated,
        demo_token.is_some(),
        paper.as_ref().map(|p| p.base_url()),
    );
    let (ingest_stop, executor_stop) = (shutdown.clone().wait(), shutdown.clone().wait());
    crate::roles::run_roles(
        shutdown,
        vec![
            (
                "ingest",
                Box::pin(async move { Ok(app.run_until(ingest_stop).await?) }),
            ),
            ("executor", Box::pin(executor.run_until(executor_stop))),
        ],
    )
    .await?;
    if let Some(paper) = paper {
        paper.shutdown().await?;
    }
    drop(local_pg);
    Ok(())
}

/// Started as root (a fresh machine, a container): once everything that needs root is done, keep
/// serving as the user the private PostgreSQL runs as (it alone can reach its socket), or as
/// `nobody` when the database is elsewhere.
fn leave_root(local_pg: Option<&LocalPostgres>) -> anyhow::Result<()> {
    if !crate::privileges::is_root() {
        return Ok(());
    }
    let user = local_pg.and_then(|pg| pg.run_as()).unwrap_or("nobody");
    crate::privileges::become_user(user)?;
    eprintln!("Started as root: HUMBEX now runs as user {user}.");
    Ok(())
}

/// The in-process paper exchange starts empty each time, while the keys stored in an earlier run
/// remain: register them again (with a fresh balance) so their signatures keep working.
async fn restore_paper_accounts(
    state: &humbex_ingest::state::AppState,
    opener: &Opener,
    paper: &humbex_paper_exchange::RunningPaperExchange,
    balance: rust_decimal::Decimal,
) -> anyhow::Result<usize> {
    use secrecy::ExposeSecret;

    let keys = humbex_shared::api_key_store::unrevoked(&**state.pool.get().await?).await?;
    let mut restored = 0;
    for key in keys {
        let pair = match opener.open(key.row, key.sealed.stored()) {
            Ok(pair) => pair,
            Err(e) => {
                // CryptoError names the key id and the fix, never the plaintext or key bytes.
                tracing::warn!(api_key_id = %key.row.id, error = %e, "a stored API key cannot be opened; not registered on the paper exchange");
                continue;
            }
        };
        let spec =
            humbex_paper_exchange::AccountSpec::new(pair.api_key(), pair.api_secret.expose_secret(), balance);
        if paper.exchange().create_account(spec).is_ok() {
            restored += 1;
        }
    }
    Ok(restored)
}

/// The demo user's exchange key: random, registered on the paper exchange and stored sealed by
/// the admin API's own code path, so the demo trades exactly like a user added by an operator.
async fn add_demo_paper_key(
    state: &humbex_ingest::state::AppState,
    user_id: uuid::Uuid,
) -> anyhow::Result<String> {
    use ring::rand::{SecureRandom, SystemRandom};
    let random = |bytes: usize| -> anyhow::Result<String> {
        let mut buf = vec![0u8; bytes];
        SystemRandom::new()
            .fill(&mut buf)
            .map_err(|_| anyhow::anyhow!("system random generator failed"))?;
        Ok(hex::encode(buf))
    };
    let api_key = format!("PAPER{}", random(10)?.to_ascii_uppercase());
    let api_secret = random(24)?;
    let stored = humbex_ingest::admin::api_keys::add_api_key(
        state,
        user_id,
        &api_key,
        &api_secret,
        Some("paper demo"),
    )
    .await
    .map_err(|e| anyhow::anyhow!("the demo user's paper API key: {e}"))?;
    tracing::info!(user_id = %user_id, api_key_id = %stored.id, "paper demo API key created");
    Ok(stored.api_key_masked)
}

fn print_banner(
    addr: std::net::SocketAddr,
    env: BybitEnv,
    generated: &[String],
    demo: bool,
    paper_url: Option<String>,
) {
    let base = format!("http://{addr}");
    let mut out = String::new();
    out.push_str(&format!(
        "\nHUMBEX is up ({} mode{}).\n",
        env.as_str(),
        if env == BybitEnv::Paper {
            ": no real orders"
        } else {
            ""
        }
    ));
    out.push_str(&format!("  Webhook (signed):      {base}/webhook\n"));
    out.push_str(&format!("  Webhook (TradingView): {base}/webhook/tradingview\n"));
    out.push_str(&format!(
        "  Docs:                  {base}/docs   (spec: {base}/openapi.json)\n"
    ));
    if let Some(url) = paper_url {
        out.push_str(&format!(
            "  Paper exchange:        {url}   (Bybit V5 REST; private WebSocket at /v5/private)\n"
        ));
    }
    if !generated.is_empty() {
        out.push_str(&format!(
            "  Generated {} into ./.humbex/secrets.env (mode 0600, kept for next time).\n",
            generated.join(", ")
        ));
    }
    if demo {
        out.push_str(
            "\nSend a signed signal for the demo user (paste in another shell, in this directory):\n\n",
        );
        out.push_str("  set -a; . ./.humbex/secrets.env; set +a\n");
        out.push_str(
            "  BODY='{\"token\":\"'\"$DEMO_WEBHOOK_TOKEN\"'\",\"action\":\"buy\",\"symbol\":\"AVAXUSDT\",\"quantity\":\"1\",\"id\":\"demo-'\"$(date +%s)\"'\"}'\n",
        );
        out.push_str(&format!(
            "  curl -sS -X POST {base}/webhook -H 'Content-Type: application/json' \\\n    -H \"X-Signature: $(printf %s \"$BODY\" | openssl dgst -sha256 -hmac \"$TRADINGVIEW_SECRET\" | awk '{{print $NF}}')\" \\\n    -d \"$BODY\"\n"
        ));
    } else {
        out.push_str("\nCreate a user with the admin API (see docs/api.md).\n");
    }
    println!("{out}");
}
