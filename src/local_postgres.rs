//! The embedded default: when no PostgreSQL answers at a local DATABASE_URL, `humbex up` starts a
//! private cluster under ./.humbex/pg with the machine's own initdb and pg_ctl, and stops it on
//! exit. Nothing is downloaded; without PostgreSQL's programs the user is told what to install.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// A private cluster started by us; stopped by [`LocalPostgres::stop`].
pub struct LocalPostgres {
    bindir: PathBuf,
    data_dir: PathBuf,
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

fn is_root() -> bool {
    // SAFETY-free check: /proc/self/status carries the effective uid on Linux.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl LocalPostgres {
    /// Initialise (once) and start a cluster listening on 127.0.0.1:`port` with trust auth for
    /// user postgres. PostgreSQL refuses to run as root, so as root it runs as user `postgres`.
    pub fn start(state_dir: &Path, port: u16) -> anyhow::Result<Self> {
        let bindir = find_bindir().context(
            "no PostgreSQL answers at DATABASE_URL and initdb/pg_ctl were not found; \
             install PostgreSQL (e.g. apt-get install postgresql) or set DATABASE_URL",
        )?;
        std::fs::create_dir_all(state_dir)?;
        let state_dir = state_dir.canonicalize()?;
        let data_dir = state_dir.join("pg");
        let socket_dir = state_dir.join("pg-socket");
        std::fs::create_dir_all(&socket_dir)?;
        let run_as = is_root().then(|| "postgres".to_owned());
        let pg = LocalPostgres {
            bindir,
            data_dir,
            run_as,
            log: state_dir.join("pg.log"),
        };
        if let Some(user) = &pg.run_as {
            // The postgres user must own its directories and be able to reach them.
            let _ = Command::new("chmod").arg("755").arg(&state_dir).status();
            if pg.data_dir.exists() {
                let _ = Command::new("chown")
                    .args(["-R", user])
                    .arg(&pg.data_dir)
                    .status();
            }
            let _ = Command::new("chown").args(["-R", user]).arg(&socket_dir).status();
        }
        if !pg.data_dir.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&pg.data_dir)?;
            if let Some(user) = &pg.run_as {
                let _ = Command::new("chown")
                    .args(["-R", user])
                    .arg(&pg.data_dir)
                    .status();
            }
            let data = pg.data_dir.display().to_string();
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
            )
            .context("initdb failed")?;
        }
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {}",
            socket_dir.display()
        );
        let data = pg.data_dir.display().to_string();
        let log = state_dir.join("pg.log").display().to_string();
        if let Some(user) = &pg.run_as {
            let _ = std::fs::File::create(&log);
            let _ = Command::new("chown").arg(user).arg(&log).status();
        }
        pg.run(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "-t", "30", "start"],
        )
        .with_context(|| format!("pg_ctl start failed; see {log}"))?;
        Ok(pg)
    }

    /// Run one of PostgreSQL's tools; its chatter is kept out of the banner and shown only on failure.
    fn run(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let program = self.bindir.join(tool);
        let output = match &self.run_as {
            Some(user) => Command::new("runuser")
                .args(["-u", user, "--"])
                .arg(&program)
                .args(args)
                .output(),
            None => Command::new(&program).args(args).output(),
        }
        .with_context(|| format!("could not run {}", program.display()))?;
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
        )
    }

    /// Stop the cluster (fast shutdown: sessions are ended, data is safe).
    pub fn stop(&self) {
        let data = self.data_dir.display().to_string();
        if let Err(e) = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]) {
            tracing::warn!(error = %e, "stopping the private PostgreSQL failed");
        }
    }
}
