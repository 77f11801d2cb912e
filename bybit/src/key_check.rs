//! Decides whether a user's Bybit API key is safe to trade with, from its `query-api` answer, with
//! the fail-closed allow-list of docs/security.md#exchange-key-allow-list: only contract-trading
//! permissions, never withdraw/transfer or anything unknown, never read-only; reports whether the
//! key is IP-bound and, when the deployment names its egress addresses, refuses a key not bound to
//! one of them.
//! [`KeyPolicy`] adds the deployment's rules (egress addresses, the mainnet IP-binding rule) and is
//! what both the add-key path and the executor's periodic re-check apply.

use std::fmt;
use std::net::IpAddr;

use crate::model::ApiKeyInfo;

/// Permission groups and the permissions allowed in each. Everything else must be empty, including
/// groups Bybit adds in the future.
const ALLOWED: &[(&str, &[&str])] = &[
    ("ContractTrade", &["Order", "Position"]),
    ("Derivatives", &["DerivativesTrade"]),
];

/// One reason to refuse a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyProblem {
    ReadOnly,
    /// A permission outside the allow-list (e.g. `Wallet: Withdraw`, or anything in a new group).
    ForbiddenPermission {
        group: String,
        permission: String,
    },
    /// The key cannot place linear orders.
    MissingTradePermission,
    /// The deployment's egress addresses are configured and the key's IP restriction names none
    /// of them (or there is none): Bybit would refuse our requests with 10010, or the key could be
    /// used from anywhere.
    NotBoundToEgress {
        egress: Vec<String>,
    },
    /// On mainnet (unless ALLOW_UNBOUND_KEYS), a key with no IP restriction: anyone holding it could
    /// trade from anywhere.
    NotIpBound,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::ReadOnly => write!(f, "the key is read-only"),
            KeyProblem::ForbiddenPermission { group, permission } => write!(
                f,
                "the key has the {group}:{permission} permission; only ContractTrade (Order, Position) and Derivatives (DerivativesTrade) are allowed"
            ),
            KeyProblem::MissingTradePermission => {
                write!(f, "the key lacks the ContractTrade:Order permission")
            }
            KeyProblem::NotBoundToEgress { egress } => write!(
                f,
                "the key's IP restriction does not include this server's address ({}); add it in Bybit's API management",
                egress.join(", ")
            ),
            KeyProblem::NotIpBound => write!(
                f,
                "the key is not bound to an IP address, which mainnet requires: bind it to this server's \
                 address in Bybit's API management (or set ALLOW_UNBOUND_KEYS=true to accept the risk)"
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVerdict {
    /// Empty means the permissions are acceptable.
    pub problems: Vec<KeyProblem>,
    /// `ips` is non-empty and contains no `*`. Whether an unbound key is allowed depends on the
    /// environment, so that decision is the caller's.
    pub ip_bound: bool,
    pub bound_ips: Vec<String>,
    /// Things worth telling the user that do not make the key unsafe.
    pub warnings: Vec<String>,
}

impl KeyVerdict {
    pub fn is_acceptable(&self) -> bool {
        self.problems.is_empty()
    }

    /// One sentence naming every problem, for an API error body.
    pub fn message(&self) -> String {
        if self.problems.is_empty() {
            let binding = if self.ip_bound {
                format!("bound to {}", self.bound_ips.join(", "))
            } else {
                "not bound to any IP address".to_string()
            };
            return format!("key accepted ({binding})");
        }
        let problems: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        format!("key refused: {}", problems.join("; "))
    }
}

/// Which keys this deployment trades with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPolicy {
    /// BYBIT_EGRESS_IPS: when not empty, a key must be bound to one of them.
    pub egress_ips: Vec<IpAddr>,
    /// A key with no IP binding is refused.
    pub require_ip_binding: bool,
}

impl KeyPolicy {
    /// The deployment's policy: mainnet requires an IP binding unless ALLOW_UNBOUND_KEYS says
    /// otherwise; testnet, demo and paper keys may be unbound (with a warning).
    pub fn new(egress_ips: Vec<IpAddr>, mainnet: bool, allow_unbound_keys: bool) -> Self {
        KeyPolicy {
            egress_ips,
            require_ip_binding: mainnet && !allow_unbound_keys,
        }
    }

    /// The allow-list, the egress rule and the binding rule over one query-api answer.
    pub fn evaluate(&self, info: &ApiKeyInfo) -> KeyVerdict {
        let mut verdict = evaluate_api_key_for(info, &self.egress_ips);
        // An egress refusal already says the key must be bound (to one of ours).
        let egress_refused = verdict
            .problems
            .iter()
            .any(|p| matches!(p, KeyProblem::NotBoundToEgress { .. }));
        if self.require_ip_binding && !verdict.ip_bound && !egress_refused {
            verdict.problems.push(KeyProblem::NotIpBound);
        }
        verdict
    }
}

/// The allow-list alone, for deployments that do not name their egress addresses.
pub fn evaluate_api_key(info: &ApiKeyInfo) -> KeyVerdict {
    evaluate_api_key_for(info, &[])
}

/// The allow-list, plus (when `egress` is not empty) the binding rule of
/// docs/security.md#ip-binding-and-the-periodic-re-check: the key
/// must be IP-bound and its `ips` must contain at least one of `egress`.
pub fn evaluate_api_key_for(info: &ApiKeyInfo, egress: &[IpAddr]) -> KeyVerdict {
    let mut problems = Vec::new();
    if info.read_only {
        problems.push(KeyProblem::ReadOnly);
    }
    for (group, permissions) in &info.permissions {
        let allowed = ALLOWED
            .iter()
            .find(|(name, _)| name == group)
            .map(|(_, allowed)| *allowed)
            .unwrap_or(&[]);
        for permission in permissions {
            if !allowed.contains(&permission.as_str()) {
                problems.push(KeyProblem::ForbiddenPermission {
                    group: group.clone(),
                    permission: permission.clone(),
                });
            }
        }
    }
    let can_order = info
        .permissions
        .get("ContractTrade")
        .is_some_and(|p| p.iter().any(|p| p == "Order"));
    if !can_order {
        problems.push(KeyProblem::MissingTradePermission);
    }

    let bound_ips: Vec<String> = info
        .ips
        .iter()
        .map(|ip| ip.trim().to_string())
        .filter(|ip| !ip.is_empty())
        .collect();
    let ip_bound = !bound_ips.is_empty() && !bound_ips.iter().any(|ip| ip == "*");

    if !egress.is_empty() {
        // Compared as addresses, so `2001:db8::1` and `2001:DB8:0::1` agree; an entry that is not
        // an address (a range, a typo) matches nothing.
        let names_ours = bound_ips
            .iter()
            .filter_map(|ip| ip.parse::<IpAddr>().ok())
            .any(|ip| egress.contains(&ip));
        if !ip_bound || !names_ours {
            problems.push(KeyProblem::NotBoundToEgress {
                egress: egress.iter().map(ToString::to_string).collect(),
            });
        }
    }

    let mut warnings = Vec::new();
    if !ip_bound {
        warnings.push("the key is not bound to an IP address; Bybit expires such keys after 90 days".into());
    }
    if info.is_master == Some(true) {
        warnings
            .push("this is a master-account key; a sub-account key limits what a leak could reach".into());
    }
    KeyVerdict {
        problems,
        ip_bound,
        bound_ips: if ip_bound { bound_ips } else { Vec::new() },
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_api_key_info, parse_envelope};
    use serde_json::json;

    fn fixture(name: &str) -> ApiKeyInfo {
        let envelope = parse_envelope(&crate::test_data::fixture(name)).unwrap();
        parse_api_key_info(envelope.result).unwrap()
    }

    fn key(permissions: serde_json::Value, ips: serde_json::Value, read_only: u8) -> ApiKeyInfo {
        parse_api_key_info(json!({"readOnly": read_only, "permissions": permissions, "ips": ips})).unwrap()
    }

    fn minimal() -> serde_json::Value {
        json!({"ContractTrade": ["Order", "Position"], "Derivatives": ["DerivativesTrade"],
               "Wallet": [], "Spot": []})
    }

    #[test]
    fn bybits_documented_example_is_refused() {
        let verdict = evaluate_api_key(&fixture("bybit_docs_query_api_example.json"));
        assert!(!verdict.is_acceptable());
        let forbidden: Vec<(&str, &str)> = verdict
            .problems
            .iter()
            .filter_map(|p| match p {
                KeyProblem::ForbiddenPermission { group, permission } => {
                    Some((group.as_str(), permission.as_str()))
                }
                _ => None,
            })
            .collect();
        assert!(forbidden.contains(&("Wallet", "AccountTransfer")));
        assert!(forbidden.contains(&("Wallet", "SubMemberTransfer")));
        assert!(forbidden.contains(&("Spot", "SpotTrade")));
        assert!(forbidden.contains(&("Options", "OptionsTrade")));
        assert!(!verdict.ip_bound);
        let message = verdict.message();
        assert!(message.contains("Wallet:AccountTransfer"), "{message}");
    }

    #[test]
    fn restricted_ip_bound_key_is_accepted() {
        let verdict = evaluate_api_key(&fixture("query_api_restricted_bot_key.json"));
        assert!(verdict.is_acceptable(), "{}", verdict.message());
        assert!(verdict.ip_bound);
        assert_eq!(verdict.bound_ips, vec!["203.0.113.10"]);
        assert!(verdict.message().contains("203.0.113.10"));
    }

    #[test]
    fn withdraw_permission_is_refused() {
        let mut permissions = minimal();
        permissions["Wallet"] = json!(["Withdraw"]);
        let verdict = evaluate_api_key(&key(permissions, json!(["1.2.3.4"]), 0));
        assert_eq!(
            verdict.problems,
            vec![KeyProblem::ForbiddenPermission {
                group: "Wallet".into(),
                permission: "Withdraw".into()
            }]
        );
    }

    #[test]
    fn unknown_new_group_is_refused_when_non_empty_and_ignored_when_empty() {
        let mut permissions = minimal();
        permissions["FiatGlobalPay"] = json!([]);
        assert!(evaluate_api_key(&key(permissions.clone(), json!(["1.2.3.4"]), 0)).is_acceptable());
        permissions["SomethingNew"] = json!(["Anything"]);
        let verdict = evaluate_api_key(&key(permissions, json!(["1.2.3.4"]), 0));
        assert!(!verdict.is_acceptable());
        assert!(verdict.message().contains("SomethingNew:Anything"));
    }

    #[test]
    fn unknown_permission_inside_an_allowed_group_is_refused() {
        let mut permissions = minimal();
        permissions["ContractTrade"] = json!(["Order", "Position", "Transfer"]);
        assert!(!evaluate_api_key(&key(permissions, json!(["1.2.3.4"]), 0)).is_acceptable());
    }

    #[test]
    fn read_only_key_is_refused() {
        let verdict = evaluate_api_key(&key(minimal(), json!(["1.2.3.4"]), 1));
        assert_eq!(verdict.problems, vec![KeyProblem::ReadOnly]);
        assert!(verdict.message().contains("read-only"));
    }

    #[test]
    fn key_without_order_permission_is_refused() {
        let verdict = evaluate_api_key(&key(json!({"ContractTrade": ["Position"]}), json!([]), 0));
        assert_eq!(verdict.problems, vec![KeyProblem::MissingTradePermission]);
    }

    #[test]
    fn egress_rule_needs_one_of_our_addresses_in_a_real_binding() {
        let ours: Vec<IpAddr> = vec!["203.0.113.10".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        // The restricted fixture is bound to 203.0.113.10.
        let fixture_key = fixture("query_api_restricted_bot_key.json");
        assert!(evaluate_api_key_for(&fixture_key, &ours).is_acceptable());
        assert!(!evaluate_api_key_for(&fixture_key, &["198.51.100.7".parse().unwrap()]).is_acceptable());
        let accepted = [json!(["203.0.113.10"]), json!(["198.51.100.7", "2001:DB8:0::1"])];
        for ips in accepted {
            let verdict = evaluate_api_key_for(&key(minimal(), ips.clone(), 0), &ours);
            assert!(verdict.is_acceptable(), "{ips}: {}", verdict.message());
        }
        let refused = [
            json!(["*"]),
            json!([]),
            json!(["203.0.113.10", "*"]),
            json!(["198.51.100.7"]),
            json!(["203.0.113.0/24"]),
        ];
        for ips in refused {
            let verdict = evaluate_api_key_for(&key(minimal(), ips.clone(), 0), &ours);
            assert_eq!(
                verdict.problems,
                vec![KeyProblem::NotBoundToEgress {
                    egress: vec!["203.0.113.10".into(), "2001:db8::1".into()]
                }],
                "{ips}"
            );
            assert!(
                verdict.message().contains("203.0.113.10"),
                "{}",
                verdict.message()
            );
        }
        let missing = parse_api_key_info(json!({"readOnly": 0, "permissions": minimal()})).unwrap();
        assert!(!evaluate_api_key_for(&missing, &ours).is_acceptable());
        // Without configured egress addresses the binding stays the caller's decision.
        assert!(evaluate_api_key_for(&key(minimal(), json!(["*"]), 0), &[]).is_acceptable());
        // Bybit's documented example stays refused for its permissions, and now its binding too.
        let docs = evaluate_api_key_for(&fixture("bybit_docs_query_api_example.json"), &ours);
        assert!(
            docs.problems
                .iter()
                .any(|p| matches!(p, KeyProblem::NotBoundToEgress { .. }))
        );
    }

    #[test]
    fn the_policy_requires_a_binding_on_mainnet_only() {
        let unbound = key(minimal(), json!(["*"]), 0);
        let mainnet = KeyPolicy::new(Vec::new(), true, false);
        assert_eq!(mainnet.evaluate(&unbound).problems, vec![KeyProblem::NotIpBound]);
        assert!(
            mainnet
                .evaluate(&unbound)
                .message()
                .contains("ALLOW_UNBOUND_KEYS")
        );
        assert!(
            mainnet
                .evaluate(&key(minimal(), json!(["1.2.3.4"]), 0))
                .is_acceptable()
        );
        assert!(
            KeyPolicy::new(Vec::new(), true, true)
                .evaluate(&unbound)
                .is_acceptable()
        );
        assert!(
            KeyPolicy::new(Vec::new(), false, false)
                .evaluate(&unbound)
                .is_acceptable()
        );
        // With egress addresses, the egress problem alone names what is wrong.
        let ours = KeyPolicy::new(vec!["203.0.113.10".parse().unwrap()], true, false);
        assert_eq!(
            ours.evaluate(&unbound).problems,
            vec![KeyProblem::NotBoundToEgress {
                egress: vec!["203.0.113.10".into()]
            }]
        );
    }

    #[test]
    fn ip_binding_is_reported() {
        for unbound in [json!(["*"]), json!([]), json!(["1.2.3.4", "*"]), json!([""])] {
            let verdict = evaluate_api_key(&key(minimal(), unbound.clone(), 0));
            assert!(verdict.is_acceptable());
            assert!(!verdict.ip_bound, "{unbound}");
            assert!(verdict.message().contains("not bound"));
            assert!(!verdict.warnings.is_empty());
        }
        let missing = parse_api_key_info(json!({"readOnly": 0, "permissions": minimal()})).unwrap();
        assert!(!evaluate_api_key(&missing).ip_bound);
        let bound = evaluate_api_key(&key(minimal(), json!(["1.2.3.4", "5.6.7.8"]), 0));
        assert!(bound.ip_bound);
        assert_eq!(bound.bound_ips.len(), 2);
    }
}
