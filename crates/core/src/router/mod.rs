//! Model groups: which deployments answer a requested model name, and which
//! one takes the next attempt.
//!
//! Groups are the repeated `model_name`s of `model_list`; `model_group_alias`
//! maps extra names onto groups; wildcard groups (`openrouter/*`, `*`) catch
//! names no exact group has, most specific pattern first. Picking is a
//! weighted random choice (`weight`, else `rpm`, else `tpm`) within the lowest
//! `order` tier that still has an untried deployment.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::{DeploymentConfig, GroupAlias};

pub type Deployment = Arc<DeploymentConfig>;

/// The deployments answering one request.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    /// The name the client asked for; answers report it as `model`.
    pub requested: &'a str,
    /// The model group (after alias resolution).
    pub group: &'a str,
    pub deployments: &'a [Deployment],
    /// What a wildcard group's `*` matched, substituted into the upstream model.
    pub wildcard_match: Option<String>,
}

#[derive(Debug)]
struct Wildcard {
    pattern: String,
    prefix: String,
    suffix: String,
    deployments: Vec<Deployment>,
}

#[derive(Debug, Default)]
pub struct Router {
    groups: HashMap<String, Vec<Deployment>>,
    /// Group names in config order, for `/v1/models`.
    names: Vec<String>,
    wildcards: Vec<Wildcard>,
    aliases: BTreeMap<String, GroupAlias>,
}

impl Router {
    pub fn new(deployments: &[DeploymentConfig], aliases: &BTreeMap<String, GroupAlias>) -> Self {
        let mut r = Router {
            aliases: aliases.clone(),
            ..Default::default()
        };
        for d in deployments {
            let d = Arc::new(d.clone());
            if let Some(star) = d.model_name.find('*') {
                let pattern = d.model_name.clone();
                match r.wildcards.iter_mut().find(|w| w.pattern == pattern) {
                    Some(w) => w.deployments.push(d),
                    None => r.wildcards.push(Wildcard {
                        prefix: pattern[..star].to_owned(),
                        suffix: pattern[star + 1..].to_owned(),
                        pattern,
                        deployments: vec![d],
                    }),
                }
            } else {
                if !r.groups.contains_key(&d.model_name) {
                    r.names.push(d.model_name.clone());
                }
                r.groups.entry(d.model_name.clone()).or_default().push(d);
            }
        }
        // Most specific first: the longest literal text wins.
        r.wildcards
            .sort_by_key(|w| std::cmp::Reverse(w.prefix.len() + w.suffix.len()));
        r
    }

    /// The deployments for a requested model name, if any group serves it.
    pub fn resolve<'a>(&'a self, requested: &'a str) -> Option<Resolved<'a>> {
        let group = match self.aliases.get(requested) {
            Some(a)
                if self.groups.contains_key(&a.target) || self.wildcard(&a.target).is_some() =>
            {
                a.target.as_str()
            }
            _ => requested,
        };
        if let Some((name, deployments)) = self.groups.get_key_value(group) {
            return Some(Resolved {
                requested,
                group: name,
                deployments,
                wildcard_match: None,
            });
        }
        let (w, matched) = self.wildcard(group)?;
        Some(Resolved {
            requested,
            group: &w.pattern,
            deployments: &w.deployments,
            wildcard_match: Some(matched),
        })
    }

    fn wildcard(&self, name: &str) -> Option<(&Wildcard, String)> {
        self.wildcards.iter().find_map(|w| {
            let fits = name.len() >= w.prefix.len() + w.suffix.len()
                && name.starts_with(&w.prefix)
                && name.ends_with(&w.suffix);
            fits.then(|| {
                (
                    w,
                    name[w.prefix.len()..name.len() - w.suffix.len()].to_owned(),
                )
            })
        })
    }

    /// Model names for `/v1/models`: groups, visible aliases, then wildcard
    /// patterns as written.
    pub fn model_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.names.iter().map(String::as_str).collect();
        for (name, a) in &self.aliases {
            if !a.hidden && !self.groups.contains_key(name) {
                out.push(name);
            }
        }
        out.extend(self.wildcards.iter().map(|w| w.pattern.as_str()));
        out
    }

    /// Every deployment, in config order.
    pub fn all(&self) -> Vec<&Deployment> {
        let mut all: Vec<&Deployment> = self
            .groups
            .values()
            .flatten()
            .chain(self.wildcards.iter().flat_map(|w| &w.deployments))
            .collect();
        all.sort_by_key(|d| d.index);
        all
    }
}

/// Pick the deployment for the next attempt: among those `allowed`, the lowest
/// `order` tier, weighted random within it. `rand01` is a uniform sample in
/// [0, 1), passed in so tests are deterministic.
pub fn pick(
    deployments: &[Deployment],
    allowed: impl Fn(usize) -> bool,
    rand01: f64,
) -> Option<(usize, &Deployment)> {
    let candidates: Vec<(usize, &Deployment)> = deployments
        .iter()
        .enumerate()
        .filter(|(i, _)| allowed(*i))
        .collect();
    let tier = candidates
        .iter()
        .map(|(_, d)| d.order.unwrap_or(u32::MAX))
        .min()?;
    let tiered: Vec<(usize, &Deployment)> = candidates
        .into_iter()
        .filter(|(_, d)| d.order.unwrap_or(u32::MAX) == tier)
        .collect();
    let weight = |d: &Deployment| d.weight.or(d.rpm).or(d.tpm).unwrap_or(1.0).max(0.0);
    let total: f64 = tiered.iter().map(|(_, d)| weight(d)).sum();
    if total <= 0.0 {
        let i = ((rand01 * tiered.len() as f64) as usize).min(tiered.len() - 1);
        return tiered.get(i).copied();
    }
    let mut point = rand01 * total;
    for (i, d) in &tiered {
        point -= weight(d);
        if point < 0.0 {
            return Some((*i, d));
        }
    }
    tiered.last().copied()
}

pub mod fallbacks;
pub mod health;
pub mod retry_policy;
pub mod strategy;
pub mod usage;

#[cfg(test)]
mod tests;
