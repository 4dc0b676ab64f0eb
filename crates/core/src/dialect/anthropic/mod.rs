//! anthropic inbound dialect (being built).
