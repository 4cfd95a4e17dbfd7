//! HTTP routes: DVC-compatible object paths, the native JSON API, health and metrics.

pub mod api;
pub mod gc;
pub mod health;
pub mod objects;
pub mod packs;
mod path;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::app::SharedState;
use crate::auth::Principal;
use crate::error::ApiError;

/// An authenticated caller.
pub struct Caller(pub Principal);

impl FromRequestParts<SharedState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Caller(state.auth.authenticate(&parts.headers).await?))
    }
}
