//! The ferrolite HTTP server: axum glue around `ferrolite-core`. Handlers
//! decode the inbound request, call the pipeline and encode the answer;
//! nothing else lives here.

pub mod app;
pub mod extract;
pub mod key_auth;
pub mod response;
pub mod routes;
pub mod spend_retention;
pub mod state;
pub mod store_glue;
pub mod ui;

pub use app::{build_app, serve};
pub use state::AppState;
