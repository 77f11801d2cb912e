//! Throw-away PostgreSQL clusters on TCP for the deployment tests: TLS with a CA made at run time,
//! streaming replicas, PgBouncer in front. Real servers from the distribution's packages, started
//! as user postgres when the tests run as root (PostgreSQL refuses root).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    humbex::privileges::is_root()
}

/// A fresh directory the postgres user can use (handed to it when we are root).
pub fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("humbex-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    hand_over(&dir);
    dir
}

/// Give `path` to user postgres (as root), so the server can read and write it.
pub fn hand_over(path: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown {}", path.display());
    }
}

/// Run a program (as user postgres when we are root); panics with its output on failure.
pub fn run_as_postgres(program: &Path, args: &[&str]) {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct TcpPostgres {
    pub port: u16,
    pub data: PathBuf,
    bindir: PathBuf,
    log: PathBuf,
}

/// PostgreSQL's own bin directory (where pg_basebackup is too), even when initdb and pg_ctl were
/// found through links elsewhere on PATH.
fn bindir() -> PathBuf {
    let found =
        humbex::local_postgres::find_bindir().expect("initdb and pg_ctl (apt-get install postgresql)");
    found
        .join("initdb")
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|dir| dir.join("pg_basebackup").is_file())
        .unwrap_or(found)
}

impl TcpPostgres {
    /// initdb a cluster in `dir`/`name` listening on 127.0.0.1 with trust for local TCP, plus
    /// `conf` appended to postgresql.conf (not started).
    pub fn init(dir: &Path, name: &str, conf: &str) -> TcpPostgres {
        let pg = TcpPostgres {
            port: free_port(),
            data: dir.join(name),
            bindir: bindir(),
            log: dir.join(format!("{name}.log")),
        };
        run_as_postgres(
            &pg.bindir.join("initdb"),
            &[
                "-D",
                pg.data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        );
        pg.append_conf(&format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 60\nfsync = off\n{conf}\n",
            pg.port,
            dir.display()
        ));
        pg.write_hba("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n");
        pg
    }

    /// A streaming standby of `primary` (pg_basebackup -R), not started.
    pub fn standby_of(primary: &TcpPostgres, dir: &Path, name: &str) -> TcpPostgres {
        let pg = TcpPostgres {
            port: free_port(),
            data: dir.join(name),
            bindir: bindir(),
            log: dir.join(format!("{name}.log")),
        };
        run_as_postgres(
            &pg.bindir.join("pg_basebackup"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                pg.data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
            ],
        );
        pg.append_conf(&format!("port = {}\n", pg.port));
        pg
    }

    pub fn append_conf(&self, text: &str) {
        use std::io::Write;
        let path = self.data.join("postgresql.conf");
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    pub fn write_hba(&self, text: &str) {
        let path = self.data.join("pg_hba.conf");
        std::fs::write(&path, text).unwrap();
        hand_over(&path);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let mut all = vec!["-D", self.data.to_str().unwrap()];
        all.extend_from_slice(args);
        run_as_postgres(&self.bindir.join("pg_ctl"), &all);
    }

    pub fn start(&self) {
        let log = self.log.display().to_string();
        self.pg_ctl(&["-l", &log, "-w", "-t", "60", "start"]);
    }

    /// Re-read the configuration (ssl can change on reload).
    pub fn reload(&self) {
        self.pg_ctl(&["reload"]);
    }

    pub fn promote(&self) {
        self.pg_ctl(&["-w", "-t", "60", "promote"]);
    }

    pub fn stop(&self) {
        let data = self.data.to_str().unwrap().to_owned();
        let _ = Command::new(if is_root() { "runuser" } else { "true" })
            .args(if is_root() {
                vec!["-u", "postgres", "--"]
            } else {
                vec![]
            })
            .arg(self.bindir.join("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// A URL to database `db` on this cluster, with `params` appended (e.g. `sslmode=require`).
    pub fn url(&self, host: &str, db: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/{db}?{params}", self.port)
    }
}

impl Drop for TcpPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority made now, and a server certificate it signs for `localhost` only (so a
/// connection to 127.0.0.1 has the right chain but the wrong name).
pub struct TestCa {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    dir: PathBuf,
}

/// The PEM form of a client certificate's private key (libpq and HUMBEX read all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// `BEGIN PRIVATE KEY` (EC).
    Pkcs8,
    /// `BEGIN EC PRIVATE KEY`.
    Sec1,
    /// `BEGIN RSA PRIVATE KEY`.
    Pkcs1,
}

/// A client certificate and its key (mode 0600), in a directory of the test's own.
pub struct ClientFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn create(dir: &Path, name: &str) -> TestCa {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=HUMBEX test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        hand_over(&dir);
        TestCa {
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            dir,
        }
    }

    /// A client certificate for user `cn` signed by this CA, written under `out` as
    /// `<name>.crt` and `<name>.key` (the key in `form`, mode 0600).
    pub fn client(&self, out: &Path, name: &str, cn: &str, form: KeyForm) -> ClientFiles {
        std::fs::create_dir_all(out).unwrap();
        let s = |p: PathBuf| p.to_str().unwrap().to_owned();
        let (cert, key, csr) = (
            out.join(format!("{name}.crt")),
            out.join(format!("{name}.key")),
            out.join(format!("{name}.csr")),
        );
        let new_key: &[&str] = match form {
            KeyForm::Pkcs8 | KeyForm::Sec1 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            KeyForm::Pkcs1 => &["-newkey", "rsa:2048"],
        };
        let subject = format!("/CN={cn}");
        let mut args = vec!["req"];
        args.extend_from_slice(new_key);
        let (key_s, csr_s) = (s(key.clone()), s(csr.clone()));
        args.extend(["-nodes", "-keyout", &key_s, "-out", &csr_s, "-subj", &subject]);
        openssl(out, &args);
        // openssl writes PKCS#8; convert to the traditional forms.
        let converted = s(out.join(format!("{name}.key.converted")));
        let convert: &[&str] = match form {
            KeyForm::Pkcs8 => &[],
            KeyForm::Sec1 => &["ec", "-in", &key_s, "-out", &converted],
            KeyForm::Pkcs1 => &["rsa", "-traditional", "-in", &key_s, "-out", &converted],
        };
        if !convert.is_empty() {
            openssl(out, convert);
            std::fs::rename(&converted, &key).unwrap();
        }
        let ext = out.join(format!("{name}.ext"));
        std::fs::write(&ext, "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
        let (ca_crt, ca_key, serial) = (
            s(self.ca_cert.clone()),
            s(self.dir.join("ca.key")),
            s(out.join(format!("{name}.srl"))),
        );
        openssl(
            out,
            &[
                "x509",
                "-req",
                "-in",
                &csr_s,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-CAserial",
                &serial,
                "-CAcreateserial",
                "-out",
                &s(cert.clone()),
                "-days",
                "2",
                "-extfile",
                &s(ext),
            ],
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        ClientFiles { cert, key }
    }

    /// postgresql.conf lines serving this certificate.
    pub fn server_conf(&self) -> String {
        format!(
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            self.server_cert.display(),
            self.server_key.display()
        )
    }
}
