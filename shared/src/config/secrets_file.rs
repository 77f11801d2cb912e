//! ./.humbex/secrets.env: where paper mode keeps the secrets `humbex up` generated, as `KEY=value`
//! lines. Only reading lives here; generating and writing belong to `humbex up`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const STATE_DIR: &str = ".humbex";
pub const FILE_NAME: &str = "secrets.env";

/// The secrets file of the current directory.
pub fn default_path() -> PathBuf {
    Path::new(STATE_DIR).join(FILE_NAME)
}

/// Read `KEY=value` lines; a missing file is empty.
pub fn read(path: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()))
        .collect())
}
