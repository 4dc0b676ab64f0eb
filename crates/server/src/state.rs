//! What every handler can reach.

use std::sync::Arc;

use ferrolite_core::Gateway;

#[derive(Clone)]
pub struct AppState {
    pub gw: Arc<Gateway>,
    /// Keys, users, teams and spend (`None`: no database, management API off).
    pub store: Option<Arc<ferrolite_store::Store>>,
}

impl AppState {
    /// Share the gateway and start its background work (Redis cooldown sync),
    /// which ends when the gateway is dropped.
    pub fn new(gw: Gateway) -> Self {
        let gw = gw.share();
        drop(gw.spawn_background());
        Self { gw, store: None }
    }

    /// Attach the store (keys, users, teams, spend).
    pub fn with_store(mut self, store: Arc<ferrolite_store::Store>) -> Self {
        self.store = Some(store);
        self
    }
}
