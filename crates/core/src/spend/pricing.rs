//! What a call cost: usage × price.
//!
//! Prices come from three places, later ones winning field by field:
//! 1. the built-in table (`prices.json`, LiteLLM's
//!    `model_prices_and_context_window.json` key format, embedded in the
//!    binary);
//! 2. a user's own LiteLLM-format file ([`Pricing::with_user_map`]), whose
//!    entries replace built-in entries of the same name;
//! 3. per-deployment overrides in `litellm_params` or `model_info`
//!    (`input_cost_per_token`, `output_cost_per_token`,
//!    `cache_read_input_token_cost`, `cache_creation_input_token_cost`,
//!    `output_cost_per_reasoning_token`).
//!
//! A deployment's entry is looked up once, at startup, by
//! `model_info.base_model`, then `litellm_params.model` as written
//! (`anthropic/claude-…`), then without its provider prefix, each also
//! without a trailing date (`-20241022`, `-2024-08-06`, `@20240620`).

use std::collections::HashMap;
use std::sync::Arc;

use ferrolite_types::Usage;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::meter::{CallRecord, Finisher};

/// The built-in price table.
const BUILT_IN: &str = include_str!("prices.json");

/// One model's prices in USD per token (LiteLLM's field names).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ModelPrice {
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub cache_read_input_token_cost: Option<f64>,
    pub cache_creation_input_token_cost: Option<f64>,
    pub output_cost_per_reasoning_token: Option<f64>,
    /// Long-context tiers: the whole call is priced at these rates when the
    /// prompt exceeds the threshold.
    pub input_cost_per_token_above_128k_tokens: Option<f64>,
    pub output_cost_per_token_above_128k_tokens: Option<f64>,
    pub input_cost_per_token_above_200k_tokens: Option<f64>,
    pub output_cost_per_token_above_200k_tokens: Option<f64>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
}

/// Fields a deployment may override, as named in `litellm_params` / `model_info`.
const OVERRIDES: &[&str] = &[
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
];

impl ModelPrice {
    fn from_value(v: &Value) -> Option<Self> {
        // Entries with a wrong type in one field (LiteLLM's file has a few
        // strings where numbers are expected) keep their other fields.
        let o = v.as_object()?;
        let num = |k: &str| o.get(k).and_then(number);
        Some(Self {
            input_cost_per_token: num("input_cost_per_token"),
            output_cost_per_token: num("output_cost_per_token"),
            cache_read_input_token_cost: num("cache_read_input_token_cost"),
            cache_creation_input_token_cost: num("cache_creation_input_token_cost"),
            output_cost_per_reasoning_token: num("output_cost_per_reasoning_token"),
            input_cost_per_token_above_128k_tokens: num("input_cost_per_token_above_128k_tokens"),
            output_cost_per_token_above_128k_tokens: num("output_cost_per_token_above_128k_tokens"),
            input_cost_per_token_above_200k_tokens: num("input_cost_per_token_above_200k_tokens"),
            output_cost_per_token_above_200k_tokens: num("output_cost_per_token_above_200k_tokens"),
            max_input_tokens: num("max_input_tokens").map(|n| n as u64),
            max_output_tokens: num("max_output_tokens").map(|n| n as u64),
        })
    }

    fn set(&mut self, field: &str, v: f64) {
        match field {
            "input_cost_per_token" => self.input_cost_per_token = Some(v),
            "output_cost_per_token" => self.output_cost_per_token = Some(v),
            "cache_read_input_token_cost" => self.cache_read_input_token_cost = Some(v),
            "cache_creation_input_token_cost" => self.cache_creation_input_token_cost = Some(v),
            "output_cost_per_reasoning_token" => self.output_cost_per_reasoning_token = Some(v),
            _ => {}
        }
    }

    /// The cost of `usage` at these prices, in USD.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let t = TokenSplit::of(usage);
        let (mut input, mut output) = (
            self.input_cost_per_token.unwrap_or(0.0),
            self.output_cost_per_token.unwrap_or(0.0),
        );
        if t.prompt > 200_000 {
            input = self.input_cost_per_token_above_200k_tokens.unwrap_or(input);
            output = self
                .output_cost_per_token_above_200k_tokens
                .unwrap_or(output);
        } else if t.prompt > 128_000 {
            input = self.input_cost_per_token_above_128k_tokens.unwrap_or(input);
            output = self
                .output_cost_per_token_above_128k_tokens
                .unwrap_or(output);
        }
        let cache_read = self.cache_read_input_token_cost.unwrap_or(input);
        let cache_write = self.cache_creation_input_token_cost.unwrap_or(input);
        let reasoning = self.output_cost_per_reasoning_token.unwrap_or(output);
        t.uncached_input() as f64 * input
            + t.cache_read as f64 * cache_read
            + t.cache_write as f64 * cache_write
            + t.plain_output() as f64 * output
            + t.reasoning as f64 * reasoning
    }

    /// The most `prompt` + `output` tokens may cost (no cache discount).
    pub fn estimate(&self, prompt: u64, output: u64) -> f64 {
        self.cost(&Usage::new(prompt, output))
    }

    pub fn is_priced(&self) -> bool {
        self.input_cost_per_token.is_some() || self.output_cost_per_token.is_some()
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite() && *f >= 0.0)
}

/// The token counts that are priced differently, from OpenAI-shaped usage
/// (and the Anthropic fields LiteLLM keeps at its top level).
#[derive(Debug, Default, PartialEq)]
struct TokenSplit {
    /// Every prompt token, cached or not.
    prompt: u64,
    cache_read: u64,
    cache_write: u64,
    /// Every completion token, reasoning included.
    completion: u64,
    reasoning: u64,
}

impl TokenSplit {
    fn of(u: &Usage) -> Self {
        let detail = |outer: &str, inner: &str| {
            u.extra
                .get(outer)
                .and_then(|d| d.get(inner))
                .and_then(Value::as_u64)
        };
        let top = |k: &str| u.extra.get(k).and_then(Value::as_u64);
        let cache_read = detail("prompt_tokens_details", "cached_tokens")
            .or_else(|| top("cache_read_input_tokens"))
            .unwrap_or(0);
        let cache_write = top("cache_creation_input_tokens")
            .or_else(|| detail("prompt_tokens_details", "cache_creation_tokens"))
            .unwrap_or(0);
        Self {
            prompt: u.prompt_tokens,
            cache_read,
            cache_write,
            completion: u.completion_tokens,
            reasoning: detail("completion_tokens_details", "reasoning_tokens").unwrap_or(0),
        }
    }

    fn uncached_input(&self) -> u64 {
        self.prompt
            .saturating_sub(self.cache_read)
            .saturating_sub(self.cache_write)
    }

    fn plain_output(&self) -> u64 {
        self.completion.saturating_sub(self.reasoning)
    }
}

/// Prices for every deployment of a config, resolved once.
#[derive(Debug, Default)]
pub struct Pricing {
    table: HashMap<String, ModelPrice>,
    /// Deployment id → its price (table entry with overrides applied).
    deployments: HashMap<String, ModelPrice>,
    /// Model group → its deployments' ids.
    groups: HashMap<String, Vec<String>>,
}

/// Parse a LiteLLM-format price map (`{"model": {"input_cost_per_token": …}}`).
pub fn parse_price_map(text: &str) -> Result<HashMap<String, ModelPrice>, String> {
    let v: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object of models: {e}"))?;
    Ok(v.iter()
        .filter(|(k, _)| k.as_str() != "sample_spec")
        .filter_map(|(k, v)| ModelPrice::from_value(v).map(|p| (k.clone(), p)))
        .collect())
}

/// `name` without a trailing date: `-20241022`, `-2024-08-06`, `@20240620`.
fn undated(name: &str) -> Option<&str> {
    let strip8 = |s: &str, sep: char| -> Option<usize> {
        let cut = s.len().checked_sub(9)?;
        let tail = s.get(cut..)?;
        (tail.starts_with(sep) && tail[1..].bytes().all(|b| b.is_ascii_digit())).then_some(cut)
    };
    if let Some(cut) = strip8(name, '-').or_else(|| strip8(name, '@')) {
        return Some(&name[..cut]);
    }
    let cut = name.len().checked_sub(11)?;
    let tail = name.get(cut..)?;
    let b = tail.as_bytes();
    let dated = b[0] == b'-'
        && b[5] == b'-'
        && b[8] == b'-'
        && [1, 2, 3, 4, 6, 7, 9, 10]
            .iter()
            .all(|i| b[*i].is_ascii_digit());
    dated.then(|| &name[..cut])
}

impl Pricing {
    /// The built-in table and the config's per-deployment overrides.
    pub fn new(config: &Config) -> Self {
        Self::build(config, None)
    }

    /// Also a user's LiteLLM-format price map, whose entries replace
    /// built-in entries of the same name.
    pub fn with_user_map(config: &Config, user_map: &str) -> Result<Self, String> {
        let user = parse_price_map(user_map)?;
        Ok(Self::build(config, Some(user)))
    }

    fn build(config: &Config, user: Option<HashMap<String, ModelPrice>>) -> Self {
        let mut table = parse_price_map(BUILT_IN).unwrap_or_default();
        if let Some(user) = user {
            table.extend(user);
        }
        let mut deployments = HashMap::new();
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        for d in &config.deployments {
            let base = d
                .model_info
                .get("base_model")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut price = base
                .as_deref()
                .and_then(|b| lookup(&table, b))
                .or_else(|| lookup(&table, &d.litellm_model))
                .cloned()
                .unwrap_or_default();
            for src in [&d.public_params, &d.model_info] {
                for f in OVERRIDES {
                    if let Some(v) = src.get(*f).and_then(number) {
                        price.set(f, v);
                    }
                }
            }
            deployments.insert(d.id.clone(), price);
            groups
                .entry(d.model_name.clone())
                .or_default()
                .push(d.id.clone());
        }
        Self {
            table,
            deployments,
            groups,
        }
    }

    /// The price of a model by name, as a deployment would look it up.
    pub fn model(&self, name: &str) -> Option<&ModelPrice> {
        lookup(&self.table, name)
    }

    /// The price of a deployment (by id), overrides applied.
    pub fn deployment(&self, id: &str) -> Option<&ModelPrice> {
        self.deployments.get(id)
    }

    /// What a finished call cost. Cached answers and calls without usage cost 0.
    pub fn cost_of(&self, rec: &CallRecord) -> f64 {
        if rec.cache_hit {
            return 0.0;
        }
        let Some(usage) = &rec.usage else { return 0.0 };
        match self.deployments.get(&rec.meta.model_id) {
            Some(p) => p.cost(usage),
            None => self
                .model(&rec.meta.upstream_model)
                .map_or(0.0, |p| p.cost(usage)),
        }
    }

    /// The most a call to `group` could cost for these token counts: the
    /// dearest of the group's deployments (0 when none is priced).
    pub fn estimate(&self, group: &str, prompt: u64, output: u64) -> f64 {
        self.groups
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|id| self.deployments.get(id))
            .map(|p| p.estimate(prompt, output))
            .fold(0.0, f64::max)
    }

    /// The finisher that sets `CallRecord::cost`.
    pub fn finisher(self: &Arc<Self>) -> Finisher {
        let me = Arc::clone(self);
        Arc::new(move |rec: &mut CallRecord| rec.cost = me.cost_of(rec))
    }
}

/// Find `name` in the table: as given, without the provider prefix, and
/// each without a trailing date.
fn lookup<'a>(table: &'a HashMap<String, ModelPrice>, name: &str) -> Option<&'a ModelPrice> {
    let bare = name.split_once('/').map(|(_, m)| m);
    let mut candidates = vec![name];
    candidates.extend(bare);
    let dated: Vec<&str> = candidates.iter().filter_map(|c| undated(c)).collect();
    candidates.extend(dated);
    candidates
        .into_iter()
        .find_map(|c| table.get(c).filter(|p| p.is_priced()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usage(v: Value) -> Usage {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn built_in_table_parses_and_prices_gpt_4o_like_litellm() {
        let t = parse_price_map(BUILT_IN).unwrap();
        assert!(t.len() > 50);
        let p = lookup(&t, "openai/gpt-4o").unwrap();
        // LiteLLM's documented example: 5 in + 1 out = 2.25e-05.
        let c = p.cost(&Usage::new(5, 1));
        assert!((c - 2.25e-5).abs() < 1e-12, "{c}");
        for name in [
            "anthropic/claude-3-5-sonnet-20241022",
            "claude-sonnet-4-5-20250929",
            "gemini/gemini-2.5-flash",
            "deepseek/deepseek-chat",
            "groq/llama-3.3-70b-versatile",
            "mistral/mistral-large-latest",
            "text-embedding-3-small",
            "o3-mini",
        ] {
            assert!(lookup(&t, name).is_some(), "{name}");
        }
        assert!(lookup(&t, "openai/gpt-4o-2024-08-06").is_some(), "dated");
        assert!(lookup(&t, "nobody/knows").is_none());
    }

    #[test]
    fn dates_are_stripped() {
        assert_eq!(undated("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(
            undated("claude-3-7-sonnet-20250219"),
            Some("claude-3-7-sonnet")
        );
        assert_eq!(
            undated("claude-3-5-sonnet@20240620"),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(undated("gpt-4o"), None);
        assert_eq!(undated("x"), None);
    }

    #[test]
    fn cached_cache_write_and_reasoning_tokens_have_their_own_price() {
        let p = ModelPrice {
            input_cost_per_token: Some(10.0),
            output_cost_per_token: Some(100.0),
            cache_read_input_token_cost: Some(1.0),
            cache_creation_input_token_cost: Some(20.0),
            output_cost_per_reasoning_token: Some(50.0),
            ..Default::default()
        };
        // OpenAI shape: 10 prompt (4 cached), 6 completion (2 reasoning).
        let u = usage(
            json!({"prompt_tokens":10,"completion_tokens":6,"total_tokens":16,
            "prompt_tokens_details":{"cached_tokens":4},
            "completion_tokens_details":{"reasoning_tokens":2}}),
        );
        assert_eq!(p.cost(&u), 6.0 * 10.0 + 4.0 + 4.0 * 100.0 + 2.0 * 50.0);
        // Anthropic fields at the top level (prompt includes both cache kinds).
        let u = usage(json!({"prompt_tokens":10,"completion_tokens":1,
            "cache_read_input_tokens":3,"cache_creation_input_tokens":2}));
        assert_eq!(p.cost(&u), 5.0 * 10.0 + 3.0 + 2.0 * 20.0 + 100.0);
    }

    #[test]
    fn long_prompts_use_the_tier_price() {
        let p = ModelPrice {
            input_cost_per_token: Some(1.0),
            output_cost_per_token: Some(2.0),
            input_cost_per_token_above_200k_tokens: Some(3.0),
            ..Default::default()
        };
        assert_eq!(p.cost(&Usage::new(200_001, 1)), 600_003.0 + 2.0);
        assert_eq!(p.cost(&Usage::new(10, 1)), 12.0);
    }

    #[test]
    fn user_maps_override_and_strings_are_tolerated() {
        let m = parse_price_map(
            r#"{"sample_spec":{"input_cost_per_token":"x"},"gpt-4o":{"input_cost_per_token":"0.5","output_cost_per_token":1},"bad":3}"#,
        )
        .unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m["gpt-4o"].input_cost_per_token, Some(0.5));
        assert!(parse_price_map("[]").is_err());
    }
}
