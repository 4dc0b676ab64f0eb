use std::collections::BTreeMap;

use super::*;
use crate::config::{load_str, Env};

fn router(yaml: &str) -> Router {
    let cfg = load_str(
        yaml,
        std::path::Path::new("."),
        &Env::isolated([("K", "k")]),
    )
    .unwrap();
    Router::new(&cfg.deployments, &cfg.router.model_group_alias)
}

const CFG: &str = r#"
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: a, weight: 3}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o-mini, api_key: b, weight: 1}
  - model_name: "openrouter/*"
    litellm_params: {model: "openrouter/*", api_key: c}
  - model_name: "*"
    litellm_params: {model: "openai/*", api_key: d}
  - model_name: tiered
    litellm_params: {model: openai/primary, api_key: e, order: 1}
  - model_name: tiered
    litellm_params: {model: openai/backup, api_key: e, order: 2}
router_settings:
  model_group_alias: {"gpt4": "gpt-4o", "secret": {"model": "gpt-4o", "hidden": true}}
"#;

#[test]
fn exact_groups_aliases_and_wildcards_resolve() {
    let r = router(CFG);
    let g = r.resolve("gpt-4o").unwrap();
    assert_eq!(
        (g.group, g.deployments.len(), g.wildcard_match.as_deref()),
        ("gpt-4o", 2, None)
    );
    let a = r.resolve("gpt4").unwrap();
    assert_eq!((a.requested, a.group), ("gpt4", "gpt-4o"));
    let w = r.resolve("openrouter/deepseek/deepseek-chat").unwrap();
    assert_eq!(
        (w.group, w.wildcard_match.as_deref()),
        ("openrouter/*", Some("deepseek/deepseek-chat"))
    );
    let any = r.resolve("o3-pro").unwrap();
    assert_eq!(
        (any.group, any.wildcard_match.as_deref()),
        ("*", Some("o3-pro"))
    );
}

#[test]
fn without_catch_all_unknown_names_do_not_resolve() {
    let r = router(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, api_key: x}\n",
    );
    assert!(r.resolve("b").is_none());
    assert!(r.resolve("a").is_some());
}

#[test]
fn models_list_groups_visible_aliases_and_patterns() {
    let r = router(CFG);
    assert_eq!(
        r.model_names(),
        vec!["gpt-4o", "tiered", "gpt4", "openrouter/*", "*"]
    );
}

#[test]
fn weighted_pick_follows_weights() {
    let r = router(CFG);
    let g = r.resolve("gpt-4o").unwrap();
    // weights 3:1 → [0, 0.75) picks the first, [0.75, 1) the second.
    assert_eq!(pick(g.deployments, |_| true, 0.0).unwrap().0, 0);
    assert_eq!(pick(g.deployments, |_| true, 0.74).unwrap().0, 0);
    assert_eq!(pick(g.deployments, |_| true, 0.76).unwrap().0, 1);
    assert_eq!(pick(g.deployments, |i| i != 0, 0.0).unwrap().0, 1);
    assert!(pick(g.deployments, |_| false, 0.5).is_none());
}

#[test]
fn lower_order_tier_goes_first() {
    let r = router(CFG);
    let g = r.resolve("tiered").unwrap();
    for x in [0.0, 0.5, 0.99] {
        assert_eq!(
            pick(g.deployments, |_| true, x).unwrap().1.litellm_model,
            "openai/primary"
        );
    }
    assert_eq!(
        pick(g.deployments, |i| i != 0, 0.5)
            .unwrap()
            .1
            .litellm_model,
        "openai/backup"
    );
}

#[test]
fn empty_alias_map_is_fine() {
    let r = Router::new(&[], &BTreeMap::new());
    assert!(r.resolve("x").is_none());
    assert!(r.model_names().is_empty());
}
