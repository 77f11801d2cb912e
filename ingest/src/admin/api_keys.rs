//! Admin: users' exchange keys, sealed with AES-256-GCM and bound to their row; never returned.

use std::sync::Arc;

use humbex_shared::crypto::CellRef;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use tokio_postgres::Row;
use uuid::Uuid;

use super::auth::AdminAuth;
use super::models::{ApiKey, ApiKeyCreate};
use super::{AdminError, within_budget};
use crate::api::ApiTags;
use crate::state::AppState;

pub const TABLE: &str = "api_keys";
pub const KEY_COLUMN: &str = "api_key_enc";
pub const SECRET_COLUMN: &str = "api_secret_enc";

#[derive(ApiResponse)]
pub enum CreateApiKeyResponse {
    /// The key was stored encrypted. The secret is never returned.
    #[oai(status = 201)]
    Created(Json<ApiKey>),
}

/// Show enough of an API key to recognise it and too little to use it.
pub fn mask_api_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "****".into();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}****{tail}")
}

fn key_from_row(r: &Row) -> ApiKey {
    ApiKey {
        id: r.get(0),
        user_id: r.get(1),
        exchange: r.get(2),
        label: r.get(3),
        api_key_masked: r.get(4),
        created_at: r.get(5),
        revoked_at: r.get(6),
    }
}

const KEY_COLUMNS: &str = "id, user_id, exchange, label, api_key_masked, created_at, revoked_at";

pub struct ApiKeysApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl ApiKeysApi {
    /// Add a Bybit API key for a user.
    ///
    /// Key and secret are each sealed with AES-256-GCM under the primary encryption key, with AAD
    /// naming this row, this user and the key id. Use a sub-account key with trading permission and
    /// no withdrawal permission.
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
    ) -> Result<CreateApiKeyResponse, AdminError> {
        let user_id = id.0;
        let api_key = body.api_key.trim();
        if api_key.is_empty() || !api_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(AdminError::field(
                "api_key",
                "must be letters and digits, as Bybit issues it",
            ));
        }
        let api_secret = body.api_secret.trim();
        if api_secret.is_empty() || !api_secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AdminError::field(
                "api_secret",
                "must be visible ASCII characters, as Bybit issues it",
            ));
        }
        let label = body.label.as_deref().unwrap_or("").trim().to_owned();
        if label.chars().any(char::is_control) {
            return Err(AdminError::field("label", "must not contain control characters"));
        }
        let row_id = Uuid::now_v7();
        let cell = |column| CellRef {
            table: TABLE,
            column,
            row_id,
            user_id,
        };
        let seal_failed = |_| {
            tracing::error!("sealing an API key failed");
            AdminError::Unavailable(crate::error::ErrorBody::new(
                "encryption_failed",
                "the key could not be encrypted; nothing was stored",
            ))
        };
        let key_enc = state
            .keyring
            .seal(cell(KEY_COLUMN), api_key.as_bytes())
            .map_err(seal_failed)?;
        let secret_enc = state
            .keyring
            .seal(cell(SECRET_COLUMN), api_secret.as_bytes())
            .map_err(seal_failed)?;
        let enc_key_id = state.keyring.primary_key_id() as i32;
        let masked = mask_api_key(api_key);
        within_budget(async {
            let client = state.pool.get().await?;
            if client.query_opt("SELECT 1 FROM users WHERE id = $1", &[&user_id]).await?.is_none() {
                return Err(AdminError::not_found("user"));
            }
            let row = client
                .query_one(
                    &format!(
                        "INSERT INTO api_keys (id, user_id, label, api_key_enc, api_secret_enc, enc_key_id, api_key_masked) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}"
                    ),
                    &[&row_id, &user_id, &label, &key_enc, &secret_enc, &enc_key_id, &masked],
                )
                .await?;
            tracing::info!(user_id = %user_id, api_key_id = %row_id, "exchange key stored");
            Ok(CreateApiKeyResponse::Created(Json(key_from_row(&row))))
        })
        .await
    }

    /// List a user's exchange keys (masked), newest first.
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
    ) -> Result<Json<Vec<ApiKey>>, AdminError> {
        within_budget(async {
            let client = state.pool.get().await?;
            if client.query_opt("SELECT 1 FROM users WHERE id = $1", &[&id.0]).await?.is_none() {
                return Err(AdminError::not_found("user"));
            }
            let rows = client
                .query(
                    &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC"),
                    &[&id.0],
                )
                .await?;
            Ok(Json(rows.iter().map(key_from_row).collect()))
        })
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
    ) -> Result<Json<ApiKey>, AdminError> {
        within_budget(async {
            let client = state.pool.get().await?;
            let row = client
                .query_opt(
                    &format!(
                        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING {KEY_COLUMNS}"
                    ),
                    &[&id.0],
                )
                .await?
                .ok_or_else(|| AdminError::not_found("API key"))?;
            tracing::info!(api_key_id = %id.0, "exchange key revoked");
            Ok(Json(key_from_row(&row)))
        })
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
