//! How pooled connections run statements, so the pool works behind a transaction pooler
//! (PgBouncer in transaction mode, Supabase's pooler): see docs/deployment.md#connection-poolers.
//!
//! tokio-postgres prepares every statement under a name (`s0`, `s1`, …) in one round trip and
//! runs it in the next. Behind a transaction pooler those two round trips can reach different
//! server connections ("prepared statement s13 does not exist"), and a cached statement outlives
//! the server connection it was prepared on. PgBouncer tracks named statements only from 1.21
//! (`max_prepared_statements`); Debian 12 ships 1.18 and managed poolers vary. So when
//! DATABASE_DIRECT_URL is set (which says DATABASE_URL is such a pooler), pooled statements are
//! sent unnamed, with their parameter types, in a single round trip (`query_typed`); the types
//! are learnt once per statement text on the direct connection. Otherwise statements are
//! prepared once per connection and cached, as before.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, Row};

use super::tls::PgConfig;

/// Learns the parameter types of statements on a direct connection.
struct Describer {
    pg: PgConfig,
    client: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
    types: RwLock<HashMap<String, Arc<[Type]>>>,
}

static UNNAMED: OnceLock<Describer> = OnceLock::new();

/// Send every pooled statement of this process unnamed, describing statements on `direct`
/// (the DATABASE_DIRECT_URL connection). Called once at start-up; later calls are ignored.
pub fn use_unnamed_statements(mut direct: PgConfig) {
    // Bounded like every other wait on the database (db::DB_WAIT).
    direct.connect_timeout(super::DB_WAIT);
    let _ = UNNAMED.set(Describer {
        pg: direct,
        client: tokio::sync::Mutex::new(None),
        types: RwLock::new(HashMap::new()),
    });
}

/// Whether pooled statements are sent unnamed in this process.
pub fn unnamed() -> bool {
    UNNAMED.get().is_some()
}

impl Describer {
    #[tracing::instrument(skip(self), level = "debug")]
    async fn types(&self, sql: &str) -> Result<Arc<[Type]>, Error> {
        if let Some(types) = self.types.read().expect("not poisoned").get(sql) {
            return Ok(types.clone());
        }
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            // A TLS failure here was already reported at start-up (db::check_tls): now it is
            // the database being unavailable, like any failed connection.
            let client = super::connect(&self.pg).await.map_err(|e| e.into_pg_error())?;
            *guard = Some(client);
        }
        let client = guard.as_ref().expect("connected above");
        let statement = client.prepare(sql).await?;
        let types: Arc<[Type]> = statement.params().into();
        self.types
            .write()
            .expect("not poisoned")
            .insert(sql.to_owned(), types.clone());
        Ok(types)
    }
}

fn typed<'b>(params: &[&'b (dyn ToSql + Sync)], types: &[Type]) -> Vec<(&'b (dyn ToSql + Sync), Type)> {
    params.iter().copied().zip(types.iter().cloned()).collect()
}

/// Statements on a pooled connection or transaction, safe behind a transaction pooler.
#[allow(async_fn_in_trait)]
pub trait Statements {
    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error>;
    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error>;
    async fn row_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, Error>;
    async fn run(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error>;
}

/// `$prepare`: how a statement is prepared when they are named: once per connection for pooled
/// connections (`prepare_cached`), per call for plain ones (tools, tests: `prepare`).
macro_rules! statements_for {
    ($ty:ty, $prepare:ident) => {
        impl Statements for $ty {
            async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
                match UNNAMED.get() {
                    Some(d) => {
                        self.query_typed(sql, &typed(params, &d.types(sql).await?))
                            .await
                    }
                    None => self.query(&self.$prepare(sql).await?, params).await,
                }
            }
            async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
                match UNNAMED.get() {
                    Some(d) => {
                        self.query_typed_one(sql, &typed(params, &d.types(sql).await?))
                            .await
                    }
                    None => self.query_one(&self.$prepare(sql).await?, params).await,
                }
            }
            async fn row_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, Error> {
                match UNNAMED.get() {
                    Some(d) => {
                        self.query_typed_opt(sql, &typed(params, &d.types(sql).await?))
                            .await
                    }
                    None => self.query_opt(&self.$prepare(sql).await?, params).await,
                }
            }
            async fn run(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
                match UNNAMED.get() {
                    Some(d) => {
                        self.execute_typed(sql, &typed(params, &d.types(sql).await?))
                            .await
                    }
                    None => self.execute(&self.$prepare(sql).await?, params).await,
                }
            }
        }
    };
}

statements_for!(deadpool_postgres::ClientWrapper, prepare_cached);
statements_for!(deadpool_postgres::Transaction<'_>, prepare_cached);
statements_for!(tokio_postgres::Client, prepare);
statements_for!(tokio_postgres::Transaction<'_>, prepare);

/// A connection as the pool hands it out.
impl Statements for deadpool_postgres::Object {
    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
        (**self).rows(sql, params).await
    }
    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
        (**self).row(sql, params).await
    }
    async fn row_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, Error> {
        (**self).row_opt(sql, params).await
    }
    async fn run(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        (**self).run(sql, params).await
    }
}

/// A statement prepared once and run many times, possibly pipelined inside a transaction: named
/// and cached on the connection, or (unnamed mode) its text with its parameter types, so that
/// running it sends everything at the first poll.
pub enum Prepared {
    Named(tokio_postgres::Statement),
    Unnamed { sql: String, types: Arc<[Type]> },
}

impl Prepared {
    pub async fn new(client: &deadpool_postgres::ClientWrapper, sql: &str) -> Result<Prepared, Error> {
        Ok(match UNNAMED.get() {
            Some(d) => Prepared::Unnamed {
                sql: sql.to_owned(),
                types: d.types(sql).await?,
            },
            None => Prepared::Named(client.prepare_cached(sql).await?),
        })
    }

    pub async fn row_opt(
        &self,
        client: &tokio_postgres::Client,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        match self {
            Prepared::Named(statement) => client.query_opt(statement, params).await,
            Prepared::Unnamed { sql, types } => client.query_typed_opt(sql, &typed(params, types)).await,
        }
    }
}
