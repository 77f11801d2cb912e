//! ./.humbex/secrets.env: where paper mode keeps the secrets `humbex up` generated, as `KEY=value`
//! lines. Only reading lives here; generating and writing belong to `humbex up`.

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const STATE_DIR: &str = ".humbex";
pub const FILE_NAME: &str = "secrets.env";

/// The secrets file of the current directory.
pub fn default_path() -> PathBuf {
    Path::new(STATE_DIR).join(FILE_NAME)
}

/// A symbolic link planted where the file should be would make us read an attacker's secrets
/// or write ours into the attacker's file: refuse it.
pub fn no_symlink(path: &Path, error: std::io::Error) -> std::io::Error {
    if error.raw_os_error() == Some(libc::ELOOP) {
        std::io::Error::other(format!(
            "refusing {}: it is a symbolic link (remove it; the file is created anew)",
            path.display()
        ))
    } else {
        error
    }
}

/// Read `KEY=value` lines; a missing file is empty; a symbolic link is refused.
pub fn read(path: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(no_symlink(path, e)),
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()))
        .collect())
}
