//! Environment lookups. `environment_variables:` from the config are kept in
//! an overlay consulted before the process environment instead of being
//! written into it: mutating the environment of a running multi-threaded
//! process is unsound, and the overlay has the same effect for every lookup
//! the gateway makes.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Env {
    overlay: HashMap<String, String>,
    /// Tests run with an isolated environment that never reads the process's.
    process: bool,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self {
            overlay: HashMap::new(),
            process: true,
        }
    }

    /// Only the given variables: for tests.
    pub fn isolated<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            overlay: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            process: false,
        }
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.overlay.insert(name.into(), value.into());
    }

    /// A variable's value; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.overlay.get(name) {
            return (!v.is_empty()).then(|| v.clone());
        }
        if self.process {
            return std::env::var(name).ok().filter(|v| !v.is_empty());
        }
        None
    }

    /// The first of `names` that is set.
    pub fn first(&self, names: &[String]) -> Option<String> {
        names.iter().find_map(|n| self.get(n))
    }
}
