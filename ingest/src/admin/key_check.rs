//! Proving a submitted Bybit key is safe before it is stored: in paper mode the key is first
//! created on the paper exchange, then GET /v5/user/query-api runs with the key itself and the
//! answer goes through humbex-bybit's allow-list (docs/security.md#exchange-key-allow-list).

use std::time::Duration;

use humbex_bybit::{ApiKeyInfo, BybitError, BybitRest, Credentials, KeyPolicy, KeyProblem, KeyVerdict};
use humbex_shared::config::{BybitConfig, BybitEnv};
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::json;

/// The control API of the paper exchange, for creating an account per stored key.
struct PaperAccounts {
    http: reqwest::Client,
    base_url: String,
    balance_usdt: Decimal,
}

/// One per process (in AppState): its clients keep their connection pools across requests.
pub struct KeyChecker {
    bybit: BybitRest,
    env: BybitEnv,
    /// The same policy the executor's re-check applies.
    policy: KeyPolicy,
    paper: Option<PaperAccounts>,
}

/// A key that passed: what to store and what to tell the operator.
#[derive(Debug)]
pub struct CheckedKey {
    /// The query-api answer without the key itself, for api_keys.permissions.
    pub permissions: serde_json::Value,
    pub warnings: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum KeyCheckError {
    /// The key must not be stored; `code` is the stable error code of the response.
    Refused { code: &'static str, message: String },
    /// The exchange could not answer; nothing is known about the key.
    Unavailable { message: String },
}

fn refused(code: &'static str, message: impl Into<String>) -> KeyCheckError {
    KeyCheckError::Refused {
        code,
        message: message.into(),
    }
}

impl KeyChecker {
    pub fn new(config: &BybitConfig) -> anyhow::Result<Self> {
        let bybit =
            BybitRest::new(config.rest_url.clone()).map_err(|e| anyhow::anyhow!("Bybit REST client: {e}"))?;
        let paper = match config.paper_control_url() {
            Some(url) => Some(PaperAccounts {
                http: reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .timeout(Duration::from_secs(5))
                    .build()?,
                base_url: url.to_owned(),
                balance_usdt: config.paper_balance_usdt,
            }),
            None => None,
        };
        Ok(KeyChecker {
            bybit,
            env: config.env,
            policy: KeyPolicy::new(
                config.egress_ips.clone(),
                config.env == BybitEnv::Mainnet,
                config.allow_unbound_keys,
            ),
            paper,
        })
    }

    pub fn env(&self) -> BybitEnv {
        self.env
    }

    /// Ask the exchange what this key may do and decide whether HUMBEX may trade with it.
    pub async fn check(&self, api_key: &str, api_secret: &str) -> Result<CheckedKey, KeyCheckError> {
        if let Some(paper) = &self.paper {
            paper.create_account(api_key, api_secret).await?;
        }
        let credentials = Credentials::new(api_key, SecretString::from(api_secret.to_owned()));
        let info = self
            .bybit
            .query_api(&credentials)
            .await
            .map_err(|e| self.explain(e))?
            .value;
        let verdict = self.policy.evaluate(&info);
        if !verdict.is_acceptable() {
            return Err(refused(verdict_code(&verdict), verdict.message()));
        }
        Ok(CheckedKey {
            permissions: snapshot(&info, self.env),
            warnings: verdict.warnings,
        })
    }

    fn explain(&self, error: BybitError) -> KeyCheckError {
        let env = self.env.as_str();
        match error {
            BybitError::KeyUnusable { code: 10003, .. } => refused(
                "invalid_api_key",
                format!(
                    "Bybit does not know this API key (10003); keys work only where they were created, \
                     and this server uses {env}"
                ),
            ),
            BybitError::KeyUnusable { code: 10004, .. } => refused(
                "invalid_api_secret",
                "Bybit refused the signature (10004): the API secret does not belong to this key",
            ),
            BybitError::KeyUnusable { code: 10010, .. } => refused(
                "ip_not_allowed",
                "Bybit refused this server's IP address (10010): add it to the key's IP restriction",
            ),
            BybitError::KeyUnusable { code, message } | BybitError::Rejected { code, message } => refused(
                "api_key_refused",
                format!("Bybit refused the key ({code}: {message})"),
            ),
            other => KeyCheckError::Unavailable {
                message: format!(
                    "Bybit ({env}) could not be asked about the key ({other}); nothing was stored, try again"
                ),
            },
        }
    }
}

/// The most serious problem names the error; the message lists them all.
fn verdict_code(verdict: &KeyVerdict) -> &'static str {
    let moves_money = |group: &str, permission: &str| {
        group == "Wallet" || permission.contains("Withdraw") || permission.contains("Transfer")
    };
    let problems = &verdict.problems;
    if problems.iter().any(|p| {
        matches!(p, KeyProblem::ForbiddenPermission { group, permission } if moves_money(group, permission))
    }) {
        "key_can_move_funds"
    } else if problems
        .iter()
        .any(|p| matches!(p, KeyProblem::ForbiddenPermission { .. }))
    {
        "key_permissions_too_broad"
    } else if problems.contains(&KeyProblem::ReadOnly) {
        "key_read_only"
    } else if problems.contains(&KeyProblem::MissingTradePermission) {
        "key_cannot_trade"
    } else if problems.contains(&KeyProblem::NotIpBound) {
        "key_not_ip_bound"
    } else {
        "key_not_bound_to_egress_ip"
    }
}

/// Everything query-api said that matters later, never the key itself (its `apiKey` field).
fn snapshot(info: &ApiKeyInfo, env: BybitEnv) -> serde_json::Value {
    json!({
        "environment": env.as_str(),
        "read_only": info.read_only,
        "permissions": info.permissions,
        "ips": info.ips,
        "type": info.key_type,
        "is_master": info.is_master,
        "expired_at": info.expired_at,
        "deadline_day": info.deadline_day,
        "uta": info.uta,
    })
}

impl PaperAccounts {
    /// An account that already exists is fine: the query-api call that follows proves whether the
    /// submitted secret is the one it was created with.
    async fn create_account(&self, api_key: &str, api_secret: &str) -> Result<(), KeyCheckError> {
        let url = format!("{}/paper/accounts", self.base_url);
        let unavailable = |why: String| KeyCheckError::Unavailable {
            message: format!(
                "the paper exchange at {} {why}; nothing was stored",
                self.base_url
            ),
        };
        let response = self
            .http
            .post(&url)
            .json(&json!({
                "api_key": api_key,
                "api_secret": api_secret,
                "balance_usdt": self.balance_usdt.to_string(),
            }))
            .send()
            .await
            // reqwest's Display carries the URL, never the body with the secret.
            .map_err(|e| unavailable(format!("is unreachable ({e})")))?;
        match response.status().as_u16() {
            201 | 409 => Ok(()),
            status => {
                let body: String = response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                Err(unavailable(format!(
                    "could not create the account (HTTP {status}: {body})"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(problems: Vec<KeyProblem>) -> KeyVerdict {
        KeyVerdict {
            problems,
            ip_bound: true,
            bound_ips: vec!["1.2.3.4".into()],
            warnings: Vec::new(),
        }
    }

    fn forbidden(group: &str, permission: &str) -> KeyProblem {
        KeyProblem::ForbiddenPermission {
            group: group.into(),
            permission: permission.into(),
        }
    }

    #[test]
    fn the_most_serious_problem_names_the_error() {
        assert_eq!(
            verdict_code(&verdict(vec![
                KeyProblem::ReadOnly,
                forbidden("Wallet", "Withdraw")
            ])),
            "key_can_move_funds"
        );
        assert_eq!(
            verdict_code(&verdict(vec![forbidden("ContractTrade", "Transfer")])),
            "key_can_move_funds"
        );
        assert_eq!(
            verdict_code(&verdict(vec![
                forbidden("Spot", "SpotTrade"),
                KeyProblem::ReadOnly
            ])),
            "key_permissions_too_broad"
        );
        assert_eq!(
            verdict_code(&verdict(vec![
                KeyProblem::ReadOnly,
                KeyProblem::MissingTradePermission
            ])),
            "key_read_only"
        );
        assert_eq!(
            verdict_code(&verdict(vec![KeyProblem::MissingTradePermission])),
            "key_cannot_trade"
        );
        let not_ours = KeyProblem::NotBoundToEgress {
            egress: vec!["203.0.113.10".into()],
        };
        assert_eq!(
            verdict_code(&verdict(vec![
                not_ours.clone(),
                KeyProblem::MissingTradePermission
            ])),
            "key_cannot_trade"
        );
        assert_eq!(
            verdict_code(&verdict(vec![not_ours])),
            "key_not_bound_to_egress_ip"
        );
        assert_eq!(
            verdict_code(&verdict(vec![KeyProblem::NotIpBound])),
            "key_not_ip_bound"
        );
    }
}
