//! The one-shot commands: `humbex migrate` and `humbex keys rewrap`.

use humbex_shared::config::{Lookup, Role};

/// `humbex migrate`: create the database if missing and apply the migrations.
pub async fn migrate(lookup: Lookup) -> anyhow::Result<()> {
    // Migrations hold a session advisory lock: DATABASE_DIRECT_URL when DATABASE_URL is a pooler.
    let url = lookup.migration_url()?;
    humbex_shared::db::ensure_database(&url).await?;
    let applied = humbex_shared::db::migrate(&url).await?;
    tracing::info!(applied, database = %url.redacted(), "migrations applied");
    Ok(())
}

/// `humbex keys generate`: a new pair, as lines an env file takes (the private key is printed
/// once, to stdout only).
pub fn generate_keys() {
    let (private, public) = humbex_shared::crypto::public_key::generate();
    println!(
        "# ingest (and keys rewrap): seals only; key id {}",
        public.key_id()
    );
    println!("ENCRYPTION_PUBLIC_KEY={}", public.to_hex());
    println!("# executor (and keys rewrap) only: opens every API key sealed to the key above");
    println!("ENCRYPTION_PRIVATE_KEY={}", private.as_str());
}

/// `humbex keys rewrap`: move every sealed secret (api_keys rows, users' webhook secrets) onto the
/// primary key and print what moved. Exits non-zero while any row is left on another key, so a
/// script never removes a key still in use.
pub async fn rewrap(lookup: Lookup, batch_size: i64) -> anyhow::Result<()> {
    let config = lookup.with_secrets_file()?.config_for(Role::KeysRewrap)?;
    let (sealer, opener) = (config.secrets.sealer()?, config.secrets.opener()?);
    let mut client = humbex_shared::db::connect(&config.database.url.pg_config()).await?;
    let done = humbex_shared::rewrap::rewrap_all(
        &mut client,
        opener,
        sealer,
        batch_size,
        config.secrets.encryption_max_per_key,
    )
    .await?;
    let primary = sealer.key_id();
    for (what, report) in [
        ("api key", &done.api_keys),
        ("webhook secret", &done.webhook_secrets),
    ] {
        println!(
            "rewrap: {} {what}(s) moved to key {primary}; {} already on it; {} failed",
            report.moved,
            report.already_primary,
            report.failed.len()
        );
    }
    for failure in done.failed() {
        println!(
            "rewrap: {} {} (key id {}): {}",
            failure.sealed, failure.row_id, failure.key_id, failure.error
        );
    }
    for (key_id, rows) in humbex_shared::rewrap::rows_per_key(&client).await? {
        println!("api keys under key {key_id}: {rows}");
    }
    for (key_id, rows) in humbex_shared::rewrap::webhook_secrets_per_key(&client).await? {
        println!("webhook secrets under key {key_id}: {rows}");
    }
    let failed = done.failed().count();
    if failed > 0 {
        anyhow::bail!("{failed} secret(s) could not be re-encrypted; keep their keys");
    }
    Ok(())
}
