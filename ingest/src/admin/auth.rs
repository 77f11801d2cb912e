//! The admin token check: the API's bearer security scheme, and the comparison the console's
//! sign-in shares.

use std::sync::Arc;

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::state::AppState;

/// `Authorization: Bearer <ADMIN_TOKEN>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_admin_token")]
pub struct AdminAuth(());

async fn check_admin_token(request: &Request, bearer: Bearer) -> Option<()> {
    let state = request.data::<Arc<AppState>>()?;
    admin_token_matches(state, &bearer.token).then_some(())
}

/// Whether `presented` is ADMIN_TOKEN: the API's bearer check and the console's sign-in both ask
/// here.
pub fn admin_token_matches(state: &AppState, presented: &str) -> bool {
    // Comparing SHA-256 digests: equal-length inputs, and a mismatch position reveals nothing
    // about the token itself.
    let presented = humbex_shared::token::digest(presented);
    let mut diff = 0u8;
    for (a, b) in presented.iter().zip(state.admin_token_digest.iter()) {
        diff |= a ^ b;
    }
    diff == 0
}
