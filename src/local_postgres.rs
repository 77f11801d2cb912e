//! The embedded default: when no PostgreSQL answers at a local DATABASE_URL, `humbex up` starts a
//! private cluster under ./.humbex/pg with the machine's own initdb and pg_ctl, and stops it on
//! exit. It has no TCP port: only a Unix socket in a 0700 directory, and a password (SCRAM) kept
//! in ./.humbex/secrets.env. Nothing is downloaded; without PostgreSQL's programs the user is told
//! what to install.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};

/// A private cluster started by us; stopped by [`LocalPostgres::stop`].
pub struct LocalPostgres {
    bindir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    password: SecretString,
    run_as: Option<String>,
    log: PathBuf,
}

/// Where initdb and pg_ctl live: PATH, then `pg_config --bindir`, then /usr/lib/postgresql/*/bin
/// (newest version first).
pub fn find_bindir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_tools(&dir) {
                return Some(dir);
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_tools(&dir) {
            return Some(dir);
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has_tools(d))
        .collect();
    candidates.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    candidates.pop()
}

/// The name in ./.humbex/secrets.env of the private cluster's superuser password.
pub const PASSWORD_NAME: &str = "LOCAL_POSTGRES_PASSWORD";

/// Who may connect, rewritten on every start: Unix socket only (there is no TCP listener), and
/// always with the password, so a local process that can reach the socket still cannot log in.
const PG_HBA: &str = "# Written by `humbex up` on every start.\nlocal all all scram-sha-256\n";

/// Create (or fix) a directory with exactly `mode`, refusing a symbolic link in its place.
fn private_dir(path: &Path, mode: u32) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            bail!("refusing {}: it is a symbolic link", path.display())
        }
        Ok(_) => {}
        Err(_) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
            .with_context(|| format!("creating {}", path.display()))?,
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

impl LocalPostgres {
    /// Initialise (once) and start a cluster that listens only on a Unix socket in a 0700
    /// directory under `state_dir`, port `port`, with superuser `postgres` whose password is kept in
    /// `state_dir`/secrets.env. PostgreSQL refuses to run as root, so as root it runs as user
    /// `postgres`, which then owns its directories.
    pub fn start(state_dir: &Path, port: u16) -> anyhow::Result<Self> {
        let bindir = find_bindir().context(
            "no PostgreSQL answers at DATABASE_URL and initdb/pg_ctl were not found; \
             install PostgreSQL (e.g. apt-get install postgresql) or set DATABASE_URL",
        )?;
        let run_as = crate::privileges::is_root().then(|| "postgres".to_owned());
        // As root, user postgres must be able to pass through (not list) the state directory.
        private_dir(state_dir, if run_as.is_some() { 0o711 } else { 0o700 })?;
        let state_dir = state_dir.canonicalize()?;
        let (secrets, _) = crate::paper_secrets::ensure(
            &state_dir.join(crate::paper_secrets::FILE_NAME),
            &[PASSWORD_NAME],
            |_| false,
        )?;
        let password = SecretString::from(secrets[PASSWORD_NAME].clone());
        let data_dir = state_dir.join("pg");
        let socket_dir = state_dir.join("pg-socket");
        private_dir(&socket_dir, 0o700)?;
        let pg = LocalPostgres {
            bindir,
            data_dir,
            socket_dir,
            port,
            password,
            run_as,
            log: state_dir.join("pg.log"),
        };
        let fresh = !pg.data_dir.join("PG_VERSION").exists();
        if fresh {
            private_dir(&pg.data_dir, 0o700)?;
        }
        pg.hand_over(&pg.data_dir)?;
        pg.hand_over(&pg.socket_dir)?;
        let data = pg.data_dir.display().to_string();
        if fresh {
            // Trust only for initdb's own bootstrap: pg_hba.conf is replaced before the first start.
            pg.run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ],
                None,
            )
            .context("initdb failed")?;
        }
        std::fs::write(pg.data_dir.join("pg_hba.conf"), PG_HBA)?;
        pg.hand_over(&pg.data_dir.join("pg_hba.conf"))?;
        pg.set_password()
            .context("setting the private PostgreSQL's password failed")?;

        // The server log is private too: it can name users, databases and queries.
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&pg.log)
            .with_context(|| format!("opening {} (a symbolic link is refused)", pg.log.display()))?;
        std::fs::set_permissions(&pg.log, std::fs::Permissions::from_mode(0o600))?;
        pg.hand_over(&pg.log)?;
        let log = pg.log.display().to_string();
        let options = format!(
            "-c listen_addresses='' -p {port} -k {} -c unix_socket_permissions=0700",
            pg.socket_dir.display()
        );
        pg.run(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "-t", "30", "start"],
            None,
        )
        .with_context(|| format!("pg_ctl start failed; see {log}"))?;
        Ok(pg)
    }

    /// The user PostgreSQL runs as when we are root (`postgres`); None otherwise.
    pub fn run_as(&self) -> Option<&str> {
        self.run_as.as_deref()
    }

    /// The URL of `dbname` on this cluster: the socket directory as host, with the password.
    /// `sslmode=disable` because a Unix socket carries no TLS (libpq ignores sslmode there; an
    /// operator's PGSSLMODE must not make this private server unreachable).
    pub fn database_url(&self, dbname: &str) -> String {
        let host = percent_encoding::utf8_percent_encode(
            &self.socket_dir.display().to_string(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        format!(
            "postgres://postgres:{}@{host}:{}/{dbname}?sslmode=disable",
            self.password.expose_secret(),
            self.port
        )
    }

    /// As root, give a path to the user PostgreSQL runs as.
    fn hand_over(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(user) = &self.run_as {
            let status = Command::new("chown").args(["-R", user]).arg(path).status()?;
            anyhow::ensure!(status.success(), "chown {user} {} failed", path.display());
        }
        Ok(())
    }

    /// Store the password from secrets.env (SCRAM-hashed by the server) in single-user mode, so it
    /// is in place before the server first accepts a connection; idempotent on every start.
    fn set_password(&self) -> anyhow::Result<()> {
        let data = self.data_dir.display().to_string();
        let script = format!(
            "SET password_encryption = 'scram-sha-256'\nALTER ROLE postgres PASSWORD '{}'\n",
            self.password.expose_secret()
        );
        self.run(
            "postgres",
            &[
                "--single",
                "-D",
                &data,
                "-c",
                "listen_addresses=",
                "-c",
                "log_min_error_statement=panic",
                "postgres",
            ],
            Some(script.as_bytes()),
        )
        .map_err(|e| anyhow::anyhow!(e.to_string().replace(self.password.expose_secret(), "[REDACTED]")))
    }

    /// Run one of PostgreSQL's tools (as user postgres when we are root); its chatter is kept out
    /// of the banner and shown only on failure.
    fn run(&self, tool: &str, args: &[&str], stdin: Option<&[u8]>) -> anyhow::Result<()> {
        let program = self.bindir.join(tool);
        let mut command = match &self.run_as {
            // After `up` has become this user itself, runuser (root only) is neither needed nor possible.
            Some(user) if crate::privileges::is_root() => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            _ => Command::new(&program),
        };
        command
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("could not run {}", program.display()))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input)?;
        }
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "{tool} exited with {}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Restart the cluster (fast: sessions are ended, data is safe), as an operator's
    /// `pg_ctl restart` would; the fault-injection suite uses it under load.
    pub fn restart(&self) -> anyhow::Result<()> {
        let data = self.data_dir.display().to_string();
        // With -l the server's output goes to the log, not to a pipe we would wait on forever.
        let log = self.log.display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-m", "fast", "-w", "-t", "30", "restart"],
            None,
        )
    }

    /// Stop the cluster (fast shutdown: sessions are ended, data is safe).
    pub fn stop(&self) {
        let data = self.data_dir.display().to_string();
        if let Err(e) = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"], None) {
            tracing::warn!(error = %e, "stopping the private PostgreSQL failed");
        }
    }
}
