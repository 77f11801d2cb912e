//! The files database TLS reads at start-up, checked as libpq checks them: the root certificates
//! that sign the server's certificate, and the client certificate with its private key (a key
//! others can read is refused). See docs/deployment.md#postgresql-over-tls.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::libpq::{ClientCert, FileParam, Source};

/// A file of libpq's under `~/.postgresql/`, if it exists.
fn home_file(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let path = Path::new(&home).join(".postgresql").join(name);
    path.is_file().then_some(path)
}

fn default_file(key: &'static str, path: PathBuf) -> FileParam {
    FileParam {
        key,
        path,
        source: Source::Default,
    }
}

/// libpq's default root certificate file: `~/.postgresql/root.crt`.
pub fn default_root() -> Option<FileParam> {
    home_file("root.crt").map(|path| default_file("sslrootcert", path))
}

fn read(file: &FileParam) -> Result<Vec<u8>, String> {
    std::fs::read(&file.path).map_err(|e| format!("{file} cannot be read ({e})"))
}

/// The certificates of a PEM file; none is an error.
fn certificates(file: &FileParam) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(&read(file)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{file} is not PEM ({e})"))?;
    if certs.is_empty() {
        return Err(format!("{file} has no certificate in it"));
    }
    Ok(certs)
}

/// A root certificate file: one or more CA certificates.
pub fn roots(file: &FileParam) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(file)? {
        roots
            .add(cert)
            .map_err(|e| format!("{file} has a bad certificate ({e})"))?;
    }
    Ok(roots)
}

pub fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err("has sslrootcert=system but no system certificate could be loaded".into());
    }
    Ok(roots)
}

/// A client certificate chain and its key, as rustls takes them.
pub type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The pair to present: the files given, or libpq's default pair when both exist.
pub fn client_identity(given: &ClientCert) -> Result<Option<(ClientIdentity, String)>, String> {
    let (cert, key) = match given {
        ClientCert::Files { cert, key } => (cert.clone(), key.clone()),
        ClientCert::Default => match (home_file("postgresql.crt"), home_file("postgresql.key")) {
            (Some(cert), Some(key)) => (default_file("sslcert", cert), default_file("sslkey", key)),
            _ => return Ok(None),
        },
    };
    let chain = certificates(&cert)?;
    let private = private_key(&key)?;
    Ok(Some(((chain, private), format!("{cert} and {key}"))))
}

/// The private key of `file`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) PEM, unencrypted, readable by its
/// owner alone.
fn private_key(file: &FileParam) -> Result<PrivateKeyDer<'static>, String> {
    check_key_permissions(file)?;
    let pem = read(file)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(_) if contains(&pem, b"ENCRYPTED") => Err(format!(
            "{file} is encrypted; a passphrase (sslpassword) is not supported: store the key \
             decrypted, readable by this user alone (openssl pkey -in <key> -out <new key>)"
        )),
        Err(e) => Err(format!(
            "{file} has no PEM private key (PKCS#8, RSA or EC) in it ({e})"
        )),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// libpq's rule (fe-secure-openssl.c): a regular file, with no access for group or others
/// (u=rw, 0600 or less) -- except that a file owned by root may be readable by its group (0640),
/// for system-wide keys.
#[cfg(unix)]
fn check_key_permissions(file: &FileParam) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&file.path).map_err(|e| format!("{file} cannot be read ({e})"))?;
    if !meta.is_file() {
        return Err(format!("{file} is not a regular file"));
    }
    let mode = meta.mode();
    let too_open = if meta.uid() == 0 {
        mode & 0o037 != 0
    } else {
        mode & 0o077 != 0
    };
    if too_open {
        return Err(format!(
            "{file} has group or world access (mode {:04o}); like libpq, a private key must be \
             u=rw (0600) or less, or u=rw,g=r (0640) or less if owned by root: chmod 600 it",
            mode & 0o7777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_key_permissions(_: &FileParam) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn key_file(dir: &Path, name: &str, text: &str, mode: u32) -> FileParam {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        FileParam {
            key: "sslkey",
            path,
            source: Source::Url,
        }
    }

    #[test]
    fn key_files_are_checked_as_libpq_checks_them() {
        let dir = std::env::temp_dir().join(format!("humbex-keyfiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let open = key_file(&dir, "open.key", "-----BEGIN PRIVATE KEY-----\n", 0o644);
        let err = private_key(&open).unwrap_err();
        assert!(err.contains("open.key"), "{err}");
        assert!(err.contains("group or world access (mode 0644)"), "{err}");
        let world = key_file(&dir, "world.key", "", 0o604);
        assert!(private_key(&world).unwrap_err().contains("world access"));

        let empty = key_file(&dir, "empty.key", "not a key\n", 0o600);
        let err = private_key(&empty).unwrap_err();
        assert!(err.contains("empty.key has no PEM private key"), "{err}");
        let encrypted = key_file(
            &dir,
            "enc.key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
            0o600,
        );
        assert!(private_key(&encrypted).unwrap_err().contains("sslpassword"));
        let missing = FileParam {
            key: "sslkey",
            path: dir.join("missing.key"),
            source: Source::Env("PGSSLKEY"),
        };
        let err = private_key(&missing).unwrap_err();
        assert!(
            err.contains("missing.key (from PGSSLKEY) cannot be read"),
            "{err}"
        );
        let cert = FileParam {
            key: "sslcert",
            path: empty.path.clone(),
            source: Source::Url,
        };
        assert!(certificates(&cert).unwrap_err().contains("no certificate"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
