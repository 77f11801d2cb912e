//! Running one role from its configuration: `humbex ingest`, `humbex executor`, `humbex
//! paper-exchange`, the executor `humbex up` builds, and how `up` runs its roles together.

use std::future::Future;

use anyhow::Context as _;

use humbex_bybit::BybitRest;
use humbex_executor::{Executor, ExecutorSettings};
use humbex_shared::config::{Config, Lookup, POOL_SIZE, Role as ConfigRole};
use humbex_shared::metrics::MetricsServer;
use humbex_shared::shutdown::{self, Shutdown};

/// An executor for this configuration: orders go to `config.bybit` (BYBIT_ENV's endpoints, the
/// local paper exchange in paper mode, or the BYBIT_REST_URL / BYBIT_WS_PRIVATE_URL overrides).
pub fn build_executor(config: &Config) -> anyhow::Result<Executor> {
    let pool = humbex_shared::db::pool(&config.database.url, POOL_SIZE)?;
    let bybit = &config.bybit;
    let rest = BybitRest::new(&bybit.rest_url)
        .map_err(|e| anyhow::anyhow!("Bybit client for {}: {e}", bybit.rest_url))?;
    tracing::info!(rest_url = %bybit.rest_url, ws_url = %bybit.ws_private_url, "executor places orders at");
    let mut settings = ExecutorSettings::new(
        config.executor.worker_poll_interval,
        // Instruments to warm up at start: the listed ones (none for `*`: read on first use).
        config
            .symbols
            .listed()
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
    );
    settings.key_recheck_interval = config.executor.key_recheck_interval;
    settings.lease = config.executor.lease;
    settings.stream_connects_per_minute = config.executor.stream_connects_per_minute;
    settings.key_policy = humbex_bybit::KeyPolicy::new(
        bybit.egress_ips.clone(),
        bybit.env == humbex_shared::config::BybitEnv::Mainnet,
        bybit.allow_unbound_keys,
    );
    let notifier = humbex_executor::notify::Notifier::new(
        pool.clone(),
        config.secrets.opener()?.clone(),
        config.notify.clone(),
        humbex_executor::notify::NotifierSettings {
            egress_ips: bybit
                .egress_ips
                .iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            ..Default::default()
        },
    )?;
    Ok(Executor::new(
        settings,
        pool,
        // LISTEN needs a session: DATABASE_DIRECT_URL when the pool goes through a pooler.
        config.database.direct().pg_config(),
        config.secrets.opener()?.clone(),
        rest,
        &bybit.ws_private_url,
    )
    .with_notifier(notifier))
}

/// `humbex ingest`: serve until SIGINT or SIGTERM, with its metrics on METRICS_HOST:METRICS_PORT.
/// Refuses root unless `allow_root`.
pub async fn run_ingest(lookup: Lookup, allow_root: bool) -> anyhow::Result<()> {
    let config = lookup.with_secrets_file()?.config_for(ConfigRole::Ingest)?;
    crate::privileges::refuse_root("ingest", allow_root)?;
    humbex_shared::db::check_tls(&config.database.url).await?;
    humbex_shared::db::apply_pooler_mode(&config.database);
    let metrics = MetricsServer::bind(config.metrics.addr()).await?;
    let app = humbex_ingest::Application::build(config).await?;
    let shutdown = Shutdown::on_signal();
    let stop = shutdown.clone().wait();
    run_roles(
        shutdown.clone(),
        vec![
            ("ingest", Box::pin(async move { Ok(app.run_until(stop).await?) })),
            metrics_role(metrics, &shutdown),
        ],
    )
    .await
}

/// `humbex executor`: place orders until SIGINT or SIGTERM, with its metrics on
/// METRICS_HOST:METRICS_PORT. Refuses root unless `allow_root`.
pub async fn run_executor(lookup: Lookup, allow_root: bool) -> anyhow::Result<()> {
    let config = lookup.with_secrets_file()?.config_for(ConfigRole::Executor)?;
    crate::privileges::refuse_root("executor", allow_root)?;
    config.bybit.env.warn_if_mainnet();
    humbex_shared::db::check_tls(&config.database.url).await?;
    if let Some(direct) = &config.database.direct_url {
        humbex_shared::db::check_tls(direct).await?;
    }
    humbex_shared::db::apply_pooler_mode(&config.database);
    let metrics = MetricsServer::bind(config.metrics.addr()).await?;
    let executor = build_executor(&config)?;
    let shutdown = Shutdown::on_signal();
    run_roles(
        shutdown.clone(),
        vec![
            ("executor", Box::pin(executor.run_until(shutdown.clone().wait()))),
            metrics_role(metrics, &shutdown),
        ],
    )
    .await
}

/// The process's metrics listener as a role: one per process, serving every role in it.
pub fn metrics_role(metrics: MetricsServer, shutdown: &Shutdown) -> Role {
    ("metrics", Box::pin(metrics.run_until(shutdown.clone().wait())))
}

/// `humbex paper-exchange`: serve until SIGINT or SIGTERM.
pub async fn run_paper_exchange(args: humbex_paper_exchange::PaperExchangeArgs) -> anyhow::Result<()> {
    let lookup = args.lookup();
    let config = humbex_paper_exchange::PaperExchangeConfig::from_lookup(&|n| lookup.get(n))?;
    let running = humbex_paper_exchange::spawn(config).await?;
    println!("paper exchange listening on {}", running.base_url());
    shutdown::signal().await;
    running.shutdown().await?;
    println!("paper exchange stopped");
    Ok(())
}

/// A role of `humbex up` (ingest, executor): its name and the future that runs it until shutdown.
pub type Role = (
    &'static str,
    std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>,
);

/// Run every role until each has stopped for `shutdown`. The first role to fail, or to stop
/// without a shutdown request, ends the others (their futures are dropped) and its error is
/// returned, so the process exits with it instead of limping on with a role missing.
pub async fn run_roles(shutdown: Shutdown, roles: Vec<Role>) -> anyhow::Result<()> {
    let watched = roles.into_iter().map(|(name, role)| {
        let shutdown = shutdown.clone();
        async move {
            role.await.with_context(|| format!("{name} stopped"))?;
            if !shutdown.requested() {
                anyhow::bail!("{name} stopped without a shutdown request");
            }
            Ok(())
        }
    });
    futures_util::future::try_join_all(watched).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::{Role, Shutdown, run_roles};

    /// A role that runs until shutdown, and reports whether it was still running when dropped.
    fn until_shutdown(shutdown: &Shutdown) -> (Role, tokio::sync::oneshot::Receiver<()>) {
        let (dropped_tx, dropped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = shutdown.clone();
        let role = Box::pin(async move {
            let _guard = dropped_tx;
            shutdown.wait().await;
            Ok(())
        });
        (("ingest", role), dropped)
    }

    #[tokio::test]
    async fn a_failing_role_stops_the_others_with_its_error() {
        let (_tx, shutdown) = Shutdown::new();
        let (ingest, mut ingest_dropped) = until_shutdown(&shutdown);
        let executor: Role = (
            "executor",
            Box::pin(async {
                tokio::task::yield_now().await;
                anyhow::bail!("the database listener died")
            }),
        );
        let err = run_roles(shutdown, vec![ingest, executor]).await.unwrap_err();
        let text = format!("{err:#}");
        assert_eq!(text, "executor stopped: the database listener died");
        // The running role was ended (dropped), not left behind.
        assert!(matches!(
            ingest_dropped.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_role_ending_without_shutdown_is_an_error() {
        let (_tx, shutdown) = Shutdown::new();
        let (ingest, _) = until_shutdown(&shutdown);
        let executor: Role = ("executor", Box::pin(async { Ok(()) }));
        let err = run_roles(shutdown, vec![ingest, executor]).await.unwrap_err();
        assert_eq!(err.to_string(), "executor stopped without a shutdown request");
    }

    #[tokio::test]
    async fn a_requested_shutdown_ends_every_role_cleanly() {
        let (tx, shutdown) = Shutdown::new();
        let (ingest, _) = until_shutdown(&shutdown);
        let (executor, _) = until_shutdown(&shutdown);
        tx.send(true).unwrap();
        run_roles(shutdown, vec![ingest, executor]).await.unwrap();
    }
}
