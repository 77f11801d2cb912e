//! A real SMTP server for the notification tests (aiosmtpd, from Debian's python3-aiosmtpd) writing
//! what it receives to a maildir, in clear, with STARTTLS or with TLS from the start; and the
//! certificates it presents, made at run time with the `openssl` CLI (a CA and a server certificate
//! for 127.0.0.1 signed by it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use humbex_shared::config::SmtpConfig;
use uuid::Uuid;

use crate::harness::wait_for;

/// `SMTP_URL` (and `SMTP_CA_FILE`) read as the executor reads them.
pub fn smtp_config(url: &str, ca_file: Option<&Path>) -> SmtpConfig {
    SmtpConfig::parse(url, "humbex@example.com", ca_file).expect("a valid SMTP configuration")
}

/// A fresh path under the temporary directory, not created.
fn scratch(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("humbex-{what}-{}", Uuid::new_v4().simple()))
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority of its own and one server certificate for 127.0.0.1 signed by it.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = scratch("pki");
        std::fs::create_dir_all(&dir).unwrap();
        let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", &p("ca.key"), "-out", &p("ca.pem"), "-days", "2"],
                &["-subj", "/CN=HUMBEX test CA"],
                &["-addext", "basicConstraints=critical,CA:TRUE"],
                &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req", "-new"][..],
                &ec,
                &["-keyout", &p("server.key"), "-out", &p("server.csr")],
                &["-subj", "/CN=127.0.0.1"],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-out",
            &p("server.pem"),
            "-days",
            "2",
            "-extfile",
            &p("server.ext"),
        ]);
        Pki { dir }
    }

    /// The CA certificate, as `SMTP_CA_FILE` takes it.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// (certificate, key) of the server.
    pub fn server(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("server.pem"), self.dir.join("server.key"))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How the server protects its connections.
pub enum ServerTls<'a> {
    None,
    /// STARTTLS offered; `required`: nothing but EHLO, STARTTLS and QUIT before it.
    StartTls {
        pki: &'a Pki,
        required: bool,
    },
    /// TLS from the first byte.
    Smtps {
        pki: &'a Pki,
    },
}

/// A running aiosmtpd writing to a maildir.
pub struct Smtp {
    pub port: u16,
    pub maildir: PathBuf,
    child: std::process::Child,
}

impl Smtp {
    pub async fn start() -> Smtp {
        Smtp::start_with(ServerTls::None).await
    }

    pub async fn start_with(tls: ServerTls<'_>) -> Smtp {
        // aiosmtpd makes the maildir (with its tmp, new and cur) only when the path does not exist.
        let maildir = scratch("smtp");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new("/usr/bin/python3");
        command.args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ]);
        match tls {
            ServerTls::None => {}
            ServerTls::StartTls { pki, required } => {
                let (cert, key) = pki.server();
                command.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
                if !required {
                    command.arg("--no-requiretls");
                }
            }
            ServerTls::Smtps { pki } => {
                let (cert, key) = pki.server();
                command.arg("--smtpscert").arg(cert).arg("--smtpskey").arg(key);
            }
        }
        // The handler's argument (the maildir) follows the options.
        let child = command
            .arg(&maildir)
            .stdout(Stdio::null())
            .spawn()
            .expect("aiosmtpd (apt-get install python3-aiosmtpd)");
        let up = wait_for(Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        assert!(up.is_some(), "aiosmtpd did not start");
        Smtp { port, maildir, child }
    }

    /// Every message received, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.maildir.join("new")) else {
            return vec![];
        };
        dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}
