//! One response type per admin operation: [`admin_response!`] declares an operation's enum with
//! its success and only the error statuses it can return, so the OpenAPI document promises no
//! others (no 409 or 415 on reads), and converts the shared [`AdminError`] into it.

use std::future::Future;

use poem::IntoResponse;

use super::AdminError;

/// An operation's response enum, built from an [`AdminError`] when the operation fails.
pub trait AdminResponse: Sized {
    /// The operation's answer for `e`: its own variant when the operation lists that status.
    fn from_error(e: AdminError) -> poem::Result<Self>;
}

/// Run an operation's work and answer with its response type. An error whose status the operation
/// does not list keeps its status and JSON body (so no client sees a different answer), and is
/// logged, since the operation's documented responses are then wrong.
pub async fn respond<R: AdminResponse>(work: impl Future<Output = Result<R, AdminError>>) -> poem::Result<R> {
    work.await.or_else(R::from_error)
}

/// The fallback of [`AdminResponse::from_error`] for a status the operation does not list.
pub fn unlisted(operation: &'static str, e: AdminError) -> poem::Error {
    let response = e.into_response();
    tracing::error!(
        operation,
        status = response.status().as_u16(),
        "an admin operation answered a status its OpenAPI responses do not list"
    );
    poem::Error::from_response(response)
}

/// Declares `enum Name { <success variants>, <error names> }`: success variants are written out
/// (`/// doc` then `201 Created(Json<T>)`); errors are named from the fixed set `BadRequest`,
/// `Unauthorized`, `NotFound`, `Conflict`, `TooManyRequests`, `Unavailable`,
/// `UnsupportedMediaType`, each with its one status and description.
macro_rules! admin_response {
    ($(#[$attr:meta])* $vis:vis enum $name:ident { $($body:tt)* }) => {
        $crate::admin::responses::admin_response!(@munch [$(#[$attr])* $vis enum $name] [] [] $($body)*);
    };
    (@munch $head:tt [$($v:tt)*] [$($arm:tt)*] BadRequest $(, $($rest:tt)*)?) => {
        $crate::admin::responses::admin_response!(@munch $head [$($v)*
            /// The request is malformed; the message names the field.
            #[oai(status = 400)]
            BadRequest(poem_openapi::payload::Json<$crate::error::ErrorBody>),
        ] [$($arm)* $crate::admin::AdminError::BadRequest(b) => Ok(Self::BadRequest(b)),] $($($rest)*)?);
    };
    (@munch $head:tt [$($v:tt)*] [$($arm:tt)*] Unauthorized $(, $($rest:tt)*)?) => {
        $crate::admin::responses::admin_response!(@munch $head [$($v)*
            /// Missing or wrong admin token.
            #[oai(status = 401)]
            Unauthorized(poem_openapi::payload::Json<$crate::error::ErrorBody>),
        ] [$($arm)*] $($($rest)*)?);
    };
    (@munch $head:tt [$($v:tt)*] [$($arm:tt)*] NotFound $(, $($rest:tt)*)?) => {
        $crate::admin::responses::admin_response!(@munch $head [$($v)*
            /// No such user, strategy, key, signal or order.
            #[oai(status = 404)]
            NotFound(poem_openapi::payload::Json<$crate::error::ErrorBody>),
        ] [$($arm)* $crate::admin::AdminError::NotFound(b) => Ok(Self::NotFound(b)),] $($($rest)*)?);
    };
    (@munch $head:tt [$($v:tt)*] [$($arm:tt)*] Conflict $(, $($rest:tt)*)?) => {
        $crate::admin::responses::admin_response!(@munch $head [$($v)*
            /// It already exists (duplicate email or strategy name).
            #[oai(status = 409)]
            Conflict(poem_openapi::payload::Json<$crate::error::ErrorBody>),
        ] [$($arm)* $crate::admin::AdminError::Conflict(b) => Ok(Self::Conflict(b)),] $($($rest)*)?);
    };
    (@munch $head:tt [$($v:tt)*] [$($arm:tt)*] TooManyRequests $(, $($rest:tt)*)?) => {
        $crate::admin::responses::admin_response!(@munch $head [$($v)*
            /// Too many failed authentications from this address; retry after `Retry-After` seconds.
            #[oai(status = 429)]
            TooManyRequests(
                poem_openapi::payload::Json<$crate::error::ErrorBody>,
                /// Seconds to wait before the next attempt.
                #[oai(header = "Retry-After")]
                u64,
            ),
        ] [$($arm)*] $($($rest)*)?);
    };
    (@munch $head:tt [$($v:tt)*] [$($arm:tt)*] Unavailable $(, $($rest:tt)*)?) => {
        $crate::admin::responses::admin_response!(@munch $head [$($v)*
            /// The database is unreachable; nothing was changed.
            #[oai(status = 503)]
            Unavailable(poem_openapi::payload::Json<$crate::error::ErrorBody>),
        ] [$($arm)* $crate::admin::AdminError::Unavailable(b) => Ok(Self::Unavailable(b)),] $($($rest)*)?);
    };
    (@munch $head:tt [$($v:tt)*] [$($arm:tt)*] UnsupportedMediaType $(, $($rest:tt)*)?) => {
        $crate::admin::responses::admin_response!(@munch $head [$($v)*
            /// The body is not JSON (or has no Content-Type).
            #[oai(status = 415)]
            UnsupportedMediaType(poem_openapi::payload::Json<$crate::error::ErrorBody>),
        ] [$($arm)*] $($($rest)*)?);
    };
    (@munch $head:tt [$($v:tt)*] [$($arm:tt)*] $(#[$m:meta])* $status:literal $variant:ident($ty:ty) $(, $($rest:tt)*)?) => {
        $crate::admin::responses::admin_response!(@munch $head [$($v)*
            $(#[$m])*
            #[oai(status = $status)]
            $variant($ty),
        ] [$($arm)*] $($($rest)*)?);
    };
    (@munch [$(#[$attr:meta])* $vis:vis enum $name:ident] [$($v:tt)*] [$($arm:tt)*]) => {
        $(#[$attr])*
        // Built once per request and moved straight into the response; boxing would buy nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(poem_openapi::ApiResponse, Debug)]
        $vis enum $name { $($v)* }

        impl $crate::admin::responses::AdminResponse for $name {
            fn from_error(e: $crate::admin::AdminError) -> poem::Result<Self> {
                #[allow(unreachable_patterns)]
                match e {
                    $($arm)*
                    other => Err($crate::admin::responses::unlisted(stringify!($name), other)),
                }
            }
        }
    };
}

pub(crate) use admin_response;
