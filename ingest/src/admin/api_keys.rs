//! Admin: users' exchange keys, sealed with AES-256-GCM and bound to their row; never returned.

use humbex_shared::db::Statements;
use std::sync::Arc;

use humbex_shared::api_key_store::{self as store, ApiKeyRecord, NewKey};
use humbex_shared::api_key_vault::KeyRow;
use humbex_shared::key_usage::{self, KeyUsageError};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use super::auth::AdminAuth;
use super::key_check::KeyCheckError;
use super::models::{ApiKey, ApiKeyCreate};
use super::responses::{admin_response, respond};
use super::{AdminError, within_budget};
use crate::error::ErrorBody;
use crate::state::AppState;
use crate::tags::ApiTags;

#[derive(ApiResponse)]
pub enum CreateApiKeyResponse {
    /// The key passed the exchange's check and was stored encrypted. The secret is never returned.
    #[oai(status = 201)]
    Created(Json<ApiKey>),
}

/// Every way adding a key can fail, each a JSON `{error, message}`.
#[derive(ApiResponse, Debug)]
pub enum ApiKeyError {
    /// The request is malformed; the message names the field.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such user.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The exchange's answer about the key rules it out; the error code names the problem.
    #[oai(status = 422)]
    KeyRefused(Json<ErrorBody>),
    /// Too many failed authentications from this address; retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds to wait before the next attempt.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// The database or the exchange is unreachable, or the encryption key is at its cap; nothing
    /// was stored.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
    /// The body is not JSON (or has no Content-Type).
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
}

impl ApiKeyError {
    pub fn body(&self) -> &ErrorBody {
        match self {
            ApiKeyError::BadRequest(b)
            | ApiKeyError::Unauthorized(b)
            | ApiKeyError::NotFound(b)
            | ApiKeyError::KeyRefused(b)
            | ApiKeyError::TooManyRequests(b, _)
            | ApiKeyError::Unavailable(b)
            | ApiKeyError::UnsupportedMediaType(b) => &b.0,
        }
    }
}

impl std::fmt::Display for ApiKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = self.body();
        write!(f, "{}: {}", body.error, body.message)
    }
}

impl From<AdminError> for ApiKeyError {
    fn from(e: AdminError) -> Self {
        match e {
            // Nothing on this path conflicts; a 400 is the closest honest answer if it ever did.
            AdminError::BadRequest(b) | AdminError::Conflict(b) => ApiKeyError::BadRequest(b),
            AdminError::NotFound(b) => ApiKeyError::NotFound(b),
            AdminError::Unavailable(b) => ApiKeyError::Unavailable(b),
        }
    }
}

impl From<KeyCheckError> for ApiKeyError {
    fn from(e: KeyCheckError) -> Self {
        match e {
            KeyCheckError::Refused { code, message } => {
                ApiKeyError::KeyRefused(ErrorBody::new(code, message))
            }
            KeyCheckError::Unavailable { message } => {
                ApiKeyError::Unavailable(ErrorBody::new("exchange_unavailable", message))
            }
        }
    }
}

/// Show enough of an API key to recognise it and too little to use it (the same rule as logs).
pub fn mask_api_key(key: &str) -> String {
    humbex_bybit::signing::mask_key(key)
}

fn shown(r: ApiKeyRecord) -> ApiKey {
    ApiKey {
        id: r.id,
        user_id: r.user_id,
        exchange: r.exchange,
        label: r.label,
        api_key_masked: r.api_key_masked,
        created_at: r.created_at,
        revoked_at: r.revoked_at,
        permissions_checked_at: r.permissions_checked_at,
        unusable_at: r.unusable_at,
        unusable_reason: r.unusable_reason,
        warnings: None,
    }
}

/// Check a key with the exchange and store it sealed: the admin API and `humbex up`'s paper demo
/// key both come through here, so both get the same checks.
pub async fn add_api_key(
    state: &AppState,
    user_id: Uuid,
    api_key: &str,
    api_secret: &str,
    label: Option<&str>,
) -> Result<ApiKey, ApiKeyError> {
    let api_key = api_key.trim();
    if api_key.is_empty() || !api_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(AdminError::field("api_key", "must be letters and digits, as Bybit issues it").into());
    }
    let api_secret = api_secret.trim();
    if api_secret.is_empty() || !api_secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AdminError::field(
            "api_secret",
            "must be visible ASCII characters, as Bybit issues it",
        )
        .into());
    }
    let label = label.unwrap_or("").trim().to_owned();
    if label.chars().any(char::is_control) {
        return Err(AdminError::field("label", "must not contain control characters").into());
    }
    // An unknown user is answered before the exchange (or the paper exchange) hears of the key.
    within_budget(async {
        let client = state.pool.get().await?;
        match client
            .row_opt(humbex_shared::store::users::EXISTS, &[&user_id])
            .await?
        {
            Some(_) => Ok(()),
            None => Err(AdminError::not_found("user")),
        }
    })
    .await?;

    let checked = state.key_checker.check(api_key, api_secret).await?;

    let row_id = Uuid::now_v7();
    let key_row = KeyRow { id: row_id, user_id };
    let seal_failed = || {
        tracing::error!(user_id = %user_id, api_key_id = %row_id, "sealing an API key failed");
        ApiKeyError::Unavailable(ErrorBody::new(
            "encryption_failed",
            "the key could not be encrypted; nothing was stored",
        ))
    };
    let enc_key_id = state.sealer.key_id();
    let masked = mask_api_key(api_key);
    let mut stored = within_budget(async {
        let mut client = state.pool.get().await?;
        let tx = client.transaction().await?;
        // Counted before sealing and in the transaction that stores the two ciphertexts: at the cap
        // nothing is sealed or stored, and an insert that fails gives its count back.
        match key_usage::reserve(&*tx, enc_key_id, 2, state.encryption_max_per_key).await {
            Ok(_) => {}
            Err(e @ KeyUsageError::CapReached { .. }) => {
                tracing::error!(user_id = %user_id, enc_key_id, error = %e, "API key refused: encryption key at its cap");
                return Ok(Err(ApiKeyError::Unavailable(ErrorBody::new(
                    "encryption_key_exhausted",
                    format!("{e}; nothing was stored"),
                ))));
            }
            Err(KeyUsageError::Database(e)) => return Err(e.into()),
        }
        let Ok(sealed) = state.sealer.seal(key_row, api_key, api_secret) else {
            return Ok(Err(seal_failed()));
        };
        let new_key = NewKey {
            row: key_row,
            label: &label,
            sealed: &sealed,
            enc_key_id,
            api_key_masked: &masked,
            permissions: &checked.permissions,
        };
        let record = store::insert(&*tx, &new_key)
            .await?
            // Deleted while the exchange was being asked.
            .ok_or_else(|| AdminError::not_found("user"))?;
        tx.commit().await?;
        Ok(Ok(shown(record)))
    })
    .await??;
    if checked.warnings.is_empty() {
        tracing::info!(user_id = %user_id, api_key_id = %row_id, env = state.key_checker.env().as_str(), "exchange key checked and stored");
    } else {
        tracing::warn!(
            user_id = %user_id,
            api_key_id = %row_id,
            env = state.key_checker.env().as_str(),
            warnings = %checked.warnings.join("; "),
            "exchange key checked and stored, with warnings"
        );
        stored.warnings = Some(checked.warnings);
    }
    Ok(stored)
}

admin_response! {
    pub enum ListApiKeysResponse {
        200 Ok(Json<Vec<ApiKey>>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable,
    }
}

admin_response! {
    pub enum RevokeApiKeyResponse {
        200 Ok(Json<ApiKey>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable,
    }
}

pub struct ApiKeysApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl ApiKeysApi {
    /// Add a Bybit API key for a user.
    ///
    /// Before anything is stored the key is checked with the exchange (GET /v5/user/query-api,
    /// signed with the submitted key and secret). In paper mode the key is first created on the
    /// paper exchange (balance PAPER_BALANCE_USDT), so the check and every later signature are real.
    /// Key and secret are then each sealed with AES-256-GCM under the primary encryption key, with
    /// AAD naming this row, this user and the key id. Use a sub-account key with only contract
    /// trading permission, bound to this server's IP address.
    ///
    /// Refusals (422), by `error` code:
    /// - `key_can_move_funds`: the key can withdraw or transfer (any Wallet permission).
    /// - `key_permissions_too_broad`: a permission beyond ContractTrade (Order, Position) and
    ///   Derivatives (DerivativesTrade).
    /// - `key_read_only`: the key is read-only.
    /// - `key_cannot_trade`: the key lacks ContractTrade:Order.
    /// - `key_not_ip_bound`: on mainnet, a key with no IP restriction (unless ALLOW_UNBOUND_KEYS=true;
    ///   elsewhere such a key is accepted and the 201 carries a warning).
    /// - `invalid_api_key` (Bybit 10003, often a key from another environment),
    ///   `invalid_api_secret` (10004, the secret does not match), `ip_not_allowed` (10010, this
    ///   server's address is not in the key's IP list), `api_key_refused` (any other refusal).
    ///
    /// - `key_not_bound_to_egress_ip`: BYBIT_EGRESS_IPS is set and the key's IP restriction names
    ///   none of those addresses.
    ///
    /// `exchange_unavailable` (503): the exchange could not be reached; nothing was stored.
    /// `encryption_key_exhausted` (503): the primary encryption key has sealed
    /// ENCRYPTION_MAX_PER_KEY values; nothing was stored until an operator rotates the key.
    #[oai(
        path = "/admin/users/:id/api-keys",
        method = "post",
        operation_id = "create_api_key"
    )]
    async fn create_api_key(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
        body: Json<ApiKeyCreate>,
    ) -> Result<CreateApiKeyResponse, ApiKeyError> {
        let stored = add_api_key(
            &state,
            id.0,
            &body.api_key,
            &body.api_secret,
            body.label.as_deref(),
        )
        .await?;
        Ok(CreateApiKeyResponse::Created(Json(stored)))
    }

    /// List a user's exchange keys (masked), newest first.
    ///
    /// A key the executor stopped using (the exchange refused it, or a re-check found it no longer
    /// acceptable) carries `unusable_at` and `unusable_reason`; both are null while it is usable.
    #[oai(
        path = "/admin/users/:id/api-keys",
        method = "get",
        operation_id = "list_api_keys"
    )]
    async fn list_api_keys(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
    ) -> poem::Result<ListApiKeysResponse> {
        respond(within_budget(async {
            let client = state.pool.get().await?;
            if client
                .row_opt(humbex_shared::store::users::EXISTS, &[&id.0])
                .await?
                .is_none()
            {
                return Err(AdminError::not_found("user"));
            }
            let keys = store::list_for_user(&**client, id.0).await?;
            Ok(ListApiKeysResponse::Ok(Json(
                keys.into_iter().map(shown).collect(),
            )))
        }))
        .await
    }

    /// Revoke an exchange key. It is never used again; revoking twice is harmless.
    #[oai(
        path = "/admin/api-keys/:id",
        method = "delete",
        operation_id = "revoke_api_key"
    )]
    async fn revoke_api_key(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
    ) -> poem::Result<RevokeApiKeyResponse> {
        respond(within_budget(async {
            let client = state.pool.get().await?;
            let record = store::revoke(&**client, id.0)
                .await?
                .ok_or_else(|| AdminError::not_found("API key"))?;
            tracing::info!(api_key_id = %id.0, "exchange key revoked");
            Ok(RevokeApiKeyResponse::Ok(Json(shown(record))))
        }))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::mask_api_key;

    #[test]
    fn masks_keep_only_the_ends() {
        assert_eq!(mask_api_key("XXXXXXXXXXXXXXXXXX"), "XXX****XXX");
        assert_eq!(mask_api_key("abcdefghijklmnopqr"), "abc****pqr");
        assert_eq!(mask_api_key("short"), "****");
    }
}
