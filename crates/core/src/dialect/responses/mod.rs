//! responses inbound dialect (being built).
