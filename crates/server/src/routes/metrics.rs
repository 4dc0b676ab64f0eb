//! Routes: metrics (being built).

use axum::Router;

use crate::state::AppState;

/// Add this module's routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r
}
