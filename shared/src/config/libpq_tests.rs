//! libpq's reading of the TLS parameters: the modes, the files, the key=value form, and the
//! environment fallbacks (given as a lookup, never through the process environment).

use std::collections::HashMap;

use super::{ClientCert, FileParam, RootCert, Source, SslMode, split};

fn no_env(_: &str) -> Option<String> {
    None
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn url_file(key: &'static str, path: &str) -> FileParam {
    FileParam {
        key,
        path: path.into(),
        source: Source::Url,
    }
}

#[test]
fn url_modes_are_read_and_rewritten_for_tokio_postgres() {
    let cases = [
        ("postgres://h/db", SslMode::Prefer, "postgres://h/db"),
        (
            "postgres://h/db?sslmode=disable",
            SslMode::Disable,
            "postgres://h/db?sslmode=disable",
        ),
        (
            "postgres://h/db?sslmode=require",
            SslMode::Require,
            "postgres://h/db?sslmode=require",
        ),
        (
            "postgres://h/db?sslmode=verify-ca",
            SslMode::VerifyCa,
            "postgres://h/db?sslmode=require",
        ),
        (
            "postgresql://a,b:6432/db?target_session_attrs=read-write&sslmode=verify-full&application_name=x",
            SslMode::VerifyFull,
            "postgresql://a,b:6432/db?target_session_attrs=read-write&application_name=x&sslmode=require",
        ),
    ];
    for (given, mode, rest) in cases {
        let split = split(given, &no_env).unwrap();
        assert_eq!(split.tls.mode, mode, "{given}");
        assert_eq!(split.rest, rest, "{given}");
        assert!(split.rest.parse::<tokio_postgres::Config>().is_ok(), "{given}");
    }
}

#[test]
fn root_cert_is_read_and_removed() {
    let file = split(
        "postgres://h/db?sslrootcert=%2Fetc%2Fca%20x.pem&sslmode=verify-full",
        &no_env,
    )
    .unwrap();
    assert_eq!(
        file.tls.root_cert,
        RootCert::File(url_file("sslrootcert", "/etc/ca x.pem"))
    );
    assert_eq!(file.rest, "postgres://h/db?sslmode=require");
    let system = split("postgres://h/db?sslmode=verify-full&sslrootcert=system", &no_env).unwrap();
    assert_eq!(system.tls.root_cert, RootCert::System);
}

#[test]
fn client_certificate_is_read_and_removed() {
    let both = split(
        "postgres://h/db?sslcert=%2Fetc%2Fc.crt&sslmode=require&sslkey=/etc/c.key",
        &no_env,
    )
    .unwrap();
    assert_eq!(
        both.tls.client_cert,
        ClientCert::Files {
            cert: url_file("sslcert", "/etc/c.crt"),
            key: url_file("sslkey", "/etc/c.key"),
        }
    );
    assert_eq!(both.rest, "postgres://h/db?sslmode=require");
    assert!(both.rest.parse::<tokio_postgres::Config>().is_ok());
    let none = split("postgres://h/db?sslmode=require", &no_env).unwrap();
    assert_eq!(none.tls.client_cert, ClientCert::Default);
}

#[test]
fn half_a_client_certificate_is_refused_naming_the_parameter() {
    let cert_only = split("postgres://h/db?sslcert=/etc/c.crt", &no_env).unwrap_err();
    assert!(cert_only.contains("sslcert=/etc/c.crt"), "{cert_only}");
    assert!(cert_only.contains("no sslkey"), "{cert_only}");
    let key_only = split("host=h sslkey=/etc/c.key", &no_env).unwrap_err();
    assert!(key_only.contains("sslkey=/etc/c.key"), "{key_only}");
    assert!(key_only.contains("no sslcert"), "{key_only}");
    // From the environment, the message names the variable.
    let env = env_of(&[("PGSSLCERT", "/env/c.crt")]);
    let from_env = split("postgres://h/db", &env).unwrap_err();
    assert!(from_env.contains("(from PGSSLCERT)"), "{from_env}");
}

#[test]
fn key_value_strings_are_read_and_requoted() {
    let kv = split(
        r"host=db user=app password='it\'s a secret' sslmode=verify-ca sslrootcert=/ca.pem sslcert=/c.crt sslkey='/my keys/c.key'",
        &no_env,
    )
    .unwrap();
    assert_eq!(kv.tls.mode, SslMode::VerifyCa);
    assert_eq!(
        kv.tls.root_cert,
        RootCert::File(url_file("sslrootcert", "/ca.pem"))
    );
    assert_eq!(
        kv.tls.client_cert,
        ClientCert::Files {
            cert: url_file("sslcert", "/c.crt"),
            key: url_file("sslkey", "/my keys/c.key"),
        }
    );
    let pg: tokio_postgres::Config = kv.rest.parse().unwrap();
    assert_eq!(pg.get_password(), Some(&b"it's a secret"[..]));
    assert_eq!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
}

/// libpq: PGSSLMODE, PGSSLROOTCERT, PGSSLCERT and PGSSLKEY apply to what the string leaves out;
/// the string wins, parameter by parameter.
#[test]
fn environment_fallbacks_apply_where_the_string_is_silent() {
    let env = env_of(&[
        ("PGSSLMODE", "verify-ca"),
        ("PGSSLROOTCERT", "/env/ca.pem"),
        ("PGSSLCERT", "/env/c.crt"),
        ("PGSSLKEY", "/env/c.key"),
    ]);
    let from_env = split("postgres://h/db", &env).unwrap();
    assert_eq!(from_env.tls.mode, SslMode::VerifyCa);
    assert_eq!(from_env.rest, "postgres://h/db?sslmode=require");
    let env_file = |key, path: &str, var| FileParam {
        key,
        path: path.into(),
        source: Source::Env(var),
    };
    assert_eq!(
        from_env.tls.root_cert,
        RootCert::File(env_file("sslrootcert", "/env/ca.pem", "PGSSLROOTCERT"))
    );
    assert_eq!(
        from_env.tls.client_cert,
        ClientCert::Files {
            cert: env_file("sslcert", "/env/c.crt", "PGSSLCERT"),
            key: env_file("sslkey", "/env/c.key", "PGSSLKEY"),
        }
    );

    // The URL wins, one parameter at a time: the key still comes from PGSSLKEY.
    let mixed = split(
        "postgres://h/db?sslmode=disable&sslrootcert=/url/ca.pem&sslcert=/url/c.crt",
        &env,
    )
    .unwrap();
    assert_eq!(mixed.tls.mode, SslMode::Disable);
    assert_eq!(mixed.rest, "postgres://h/db?sslmode=disable");
    assert_eq!(
        mixed.tls.root_cert,
        RootCert::File(url_file("sslrootcert", "/url/ca.pem"))
    );
    assert_eq!(
        mixed.tls.client_cert,
        ClientCert::Files {
            cert: url_file("sslcert", "/url/c.crt"),
            key: env_file("sslkey", "/env/c.key", "PGSSLKEY"),
        }
    );
    // The key=value form reads them the same way.
    let kv = split("host=h sslmode=require", &env).unwrap();
    assert_eq!(kv.tls.mode, SslMode::Require);
    assert!(matches!(kv.tls.client_cert, ClientCert::Files { .. }));

    // Blank counts as unset, here as for every variable.
    let blank = env_of(&[("PGSSLMODE", " ")]);
    assert_eq!(
        split("postgres://h/db", &blank).unwrap().tls.mode,
        SslMode::Prefer
    );
}

#[test]
fn wrong_values_are_refused_with_the_reason() {
    let bogus = split("postgres://h/db?sslmode=bogus", &no_env).unwrap_err();
    assert!(bogus.contains("bogus"), "{bogus}");
    let allow = split("postgres://h/db?sslmode=allow", &no_env).unwrap_err();
    assert!(allow.contains("sslmode=allow is not supported"), "{allow}");
    assert!(allow.contains("plaintext first"), "{allow}");
    let env_allow = split("postgres://h/db", &env_of(&[("PGSSLMODE", "allow")])).unwrap_err();
    assert!(env_allow.contains("(from PGSSLMODE)"), "{env_allow}");
    let weak = split("postgres://h/db?sslmode=require&sslrootcert=system", &no_env).unwrap_err();
    assert!(weak.contains("verify-full"), "{weak}");
    assert!(split("host=db sslmode", &no_env).is_err());
}
