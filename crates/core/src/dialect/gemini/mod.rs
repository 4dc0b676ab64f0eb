//! gemini inbound dialect (being built).
