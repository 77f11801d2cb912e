//! Where a variable's value comes from, for every command: a command-line flag, else the process
//! environment, else (for the secrets paper mode generates, in paper mode only) ./.humbex/secrets.env.

use std::collections::BTreeMap;
use std::fmt;

use super::bybit::{BybitEnv, bybit_env};
use super::database::{DatabaseUrl, database_url, migration_url};
use super::parse::ConfigError;
use super::{Config, secrets_file};

/// Names the secrets file may supply (paper mode only).
pub const FILE_SUPPLIED: [&str; 6] = [
    "TRADINGVIEW_SECRET",
    "ENCRYPTION_KEY_HEX",
    "ENCRYPTION_PRIVATE_KEY",
    "ENCRYPTION_PUBLIC_KEY",
    "ADMIN_TOKEN",
    "DEMO_WEBHOOK_TOKEN",
];

/// The layered source of values. `Debug` shows names, never values.
#[derive(Clone, Default)]
pub struct Lookup {
    flags: BTreeMap<&'static str, String>,
    file: BTreeMap<String, String>,
}

impl Lookup {
    /// Flags, where given, win over the environment. A blank value counts as unset.
    pub fn with_flag(mut self, name: &'static str, value: Option<&str>) -> Lookup {
        if let Some(value) = value {
            self.flags.insert(name, value.to_owned());
        }
        self
    }

    /// A variable's value: the flag, else the environment, else the secrets file.
    pub fn get(&self, name: &str) -> Option<String> {
        let direct = self
            .flags
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.trim().is_empty());
        direct.or_else(|| {
            FILE_SUPPLIED
                .contains(&name)
                .then(|| self.file.get(name).cloned())
                .flatten()
        })
    }

    /// A value of the secrets file alone (e.g. the token `humbex up` wrote there).
    pub fn file_value(&self, name: &str) -> Option<&str> {
        self.file.get(name).map(String::as_str)
    }

    pub fn bybit_env(&self) -> Result<BybitEnv, ConfigError> {
        bybit_env(&|n| self.get(n))
    }

    pub fn database_url(&self) -> Result<DatabaseUrl, ConfigError> {
        database_url(&|n| self.get(n))
    }

    /// Where migrations run: DATABASE_DIRECT_URL if set, else DATABASE_URL.
    pub fn migration_url(&self) -> Result<DatabaseUrl, ConfigError> {
        migration_url(&|n| self.get(n))
    }

    /// In paper mode, fall back to ./.humbex/secrets.env for the generated secrets (an unreadable
    /// file counts as empty; a missing secret is then reported by name).
    pub fn with_secrets_file(mut self) -> Result<Lookup, ConfigError> {
        self.file = if self.bybit_env()? == BybitEnv::Paper {
            secrets_file::read(&secrets_file::default_path()).unwrap_or_default()
        } else {
            BTreeMap::new()
        };
        Ok(self)
    }

    /// The full configuration through this lookup (every role: `humbex up`).
    pub fn config(&self) -> Result<Config, ConfigError> {
        Config::from_lookup(&|n| self.get(n))
    }

    /// What one role uses, through this lookup.
    pub fn config_for(&self, role: super::Role) -> Result<Config, ConfigError> {
        Config::for_role(role, &|n| self.get(n))
    }
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookup")
            .field("flags", &self.flags.keys().collect::<Vec<_>>())
            .field("file", &self.file.keys().collect::<Vec<_>>())
            .finish()
    }
}
