//! What every handler can reach.

use std::sync::Arc;

use ferrolite_core::Gateway;

#[derive(Clone)]
pub struct AppState {
    pub gw: Arc<Gateway>,
}

impl AppState {
    /// Share the gateway and start its background work (Redis cooldown sync),
    /// which ends when the gateway is dropped.
    pub fn new(gw: Gateway) -> Self {
        let gw = gw.share();
        drop(gw.spawn_background());
        Self { gw }
    }
}
