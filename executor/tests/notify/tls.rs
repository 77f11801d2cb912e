//! Email over TLS against a real aiosmtpd: STARTTLS and SMTPS with a CA the operator gives in
//! SMTP_CA_FILE (made at run time), and every way it must not go: a certificate the trusted roots do
//! not vouch for, or a server without STARTTLS, is retried and never sent in clear.

use humbex_shared::config::SmtpConfig;

use crate::harness::{World, mail_text};
use crate::smtp::{Pki, ServerTls, Smtp, smtp_config};

/// Run a sender whose SMTP relay is `smtp` until the user's email delivery has `n` attempts.
async fn email_attempts(w: &World, smtp: SmtpConfig, n: usize) -> Vec<(String, Option<String>)> {
    let mut config = w.config();
    config.smtp = Some(smtp);
    w.run_until_attempts(w.opener.clone(), config, "email", n).await
}

#[tokio::test]
async fn starttls_with_the_operators_ca_delivers_and_that_server_refuses_clear_text() {
    let w = World::start().await;
    let pki = Pki::new();
    let server = Smtp::start_with(ServerTls::StartTls {
        pki: &pki,
        required: true,
    })
    .await;

    // The control: this server takes nothing in clear, so what arrives below came over TLS.
    w.fill_one().await;
    let plain = smtp_config(&format!("smtp://127.0.0.1:{}", server.port), None);
    let refused = email_attempts(&w, plain, 1).await;
    assert_eq!(refused[0].0, "refused", "{refused:?}");
    assert!(server.messages().is_empty());

    w.fill_one().await;
    let url = format!("smtp://127.0.0.1:{}?tls=required", server.port);
    let tls = email_attempts(&w, smtp_config(&url, Some(&pki.ca())), 2).await;
    assert_eq!(tls[1].0, "delivered", "{tls:?}");
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let mail = mail_text(&messages[0]);
    assert!(
        mail.contains("To: ann@example.com") && mail.contains("Filled:"),
        "{mail}"
    );
}

#[tokio::test]
async fn smtps_with_the_operators_ca_delivers() {
    let w = World::start().await;
    let pki = Pki::new();
    let server = Smtp::start_with(ServerTls::Smtps { pki: &pki }).await;
    w.fill_one().await;
    let url = format!("smtps://127.0.0.1:{}", server.port);
    let done = email_attempts(&w, smtp_config(&url, Some(&pki.ca())), 1).await;
    assert_eq!(done[0].0, "delivered", "{done:?}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn a_certificate_the_trusted_roots_do_not_vouch_for_is_retried_and_nothing_goes_in_clear() {
    let w = World::start().await;
    let pki = Pki::new();
    // STARTTLS offered but not required: a client that gave up on TLS and went on in clear would
    // be taken, so an empty maildir shows it did not.
    let server = Smtp::start_with(ServerTls::StartTls {
        pki: &pki,
        required: false,
    })
    .await;
    w.fill_one().await;
    let url = format!("smtp://127.0.0.1:{}?tls=required", server.port);
    let other = Pki::new();
    let tried = email_attempts(&w, smtp_config(&url, Some(&other.ca())), 1).await;
    // The public roots (no SMTP_CA_FILE) do not know the test CA either.
    let tried = [
        tried,
        email_attempts(&w, smtp_config(&url, None), 2).await[1..].to_vec(),
    ]
    .concat();
    for (outcome, detail) in &tried {
        assert_eq!(outcome, "retry", "{tried:?}");
        let detail = detail.as_deref().unwrap_or("").to_lowercase();
        assert!(
            detail.contains("certificate") || detail.contains("issuer"),
            "{detail}"
        );
    }
    assert!(server.messages().is_empty(), "nothing was sent in clear");

    // The same server with its own CA trusted takes it.
    let done = email_attempts(&w, smtp_config(&url, Some(&pki.ca())), 3).await;
    assert_eq!(done[2].0, "delivered", "{done:?}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn starttls_required_never_sends_in_clear_to_a_server_without_it() {
    let w = World::start().await;
    w.fill_one().await;
    let url = format!("smtp://127.0.0.1:{}?tls=required", w.smtp.port);
    let refused = email_attempts(&w, smtp_config(&url, None), 1).await;
    assert_ne!(refused[0].0, "delivered", "{refused:?}");
    assert!(
        w.smtp.messages().is_empty(),
        "nothing reached the server in clear"
    );
}
