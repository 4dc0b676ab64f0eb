//! What every handler can reach.

use std::sync::Arc;

use ferrolite_core::Gateway;

#[derive(Clone)]
pub struct AppState {
    pub gw: Arc<Gateway>,
}

impl AppState {
    pub fn new(gw: Gateway) -> Self {
        Self { gw: Arc::new(gw) }
    }
}
