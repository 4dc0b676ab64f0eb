//! Routing strategies (`router_settings.routing_strategy`): which deployment
//! of a group takes the next attempt, among those allowed, always within the
//! lowest `order` tier that has one.

use crate::router::usage::View;
use crate::router::{pick, Deployment};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// Weighted random (`weight`, else `rpm`, else `tpm`). The default.
    SimpleShuffle,
    /// Fewest requests in flight.
    LeastBusy,
    /// Lowest recent latency (time to first token for streams); deployments
    /// within `buffer` (a fraction) of the best are picked at random.
    LatencyBased { buffer: f64 },
    /// Lowest tokens (then requests) used this minute.
    UsageBased,
    /// Cheapest by `input_cost_per_token + output_cost_per_token`.
    CostBased,
}

impl Strategy {
    pub fn from_name(name: Option<&str>, latency_buffer: f64) -> Self {
        match name {
            Some("least-busy") => Strategy::LeastBusy,
            Some("latency-based-routing") => Strategy::LatencyBased {
                buffer: latency_buffer.max(0.0),
            },
            Some("usage-based-routing") | Some("usage-based-routing-v2") => Strategy::UsageBased,
            Some("cost-based-routing") => Strategy::CostBased,
            _ => Strategy::SimpleShuffle,
        }
    }
}

/// Price of one prompt plus one completion token, from `model_info` or
/// `litellm_params`; unknown prices sort last.
pub fn unit_cost(d: &Deployment) -> f64 {
    let get = |k: &str| {
        d.model_info
            .get(k)
            .or_else(|| d.public_params.get(k))
            .and_then(|v| {
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
    };
    match (get("input_cost_per_token"), get("output_cost_per_token")) {
        (None, None) => f64::INFINITY,
        (i, o) => i.unwrap_or(0.0) + o.unwrap_or(0.0),
    }
}

/// Pick a deployment. `views[i]` is deployment i's live usage; `rand01` a
/// uniform sample in [0, 1) for the random choices.
pub fn choose<'a>(
    strategy: Strategy,
    deployments: &'a [Deployment],
    allowed: impl Fn(usize) -> bool,
    views: &[View],
    rand01: f64,
) -> Option<(usize, &'a Deployment)> {
    let tier = deployments
        .iter()
        .enumerate()
        .filter(|(i, _)| allowed(*i))
        .map(|(_, d)| d.order.unwrap_or(u32::MAX))
        .min()?;
    let in_tier = |i: usize| allowed(i) && deployments[i].order.unwrap_or(u32::MAX) == tier;
    let key: Box<dyn Fn(usize) -> f64> = match strategy {
        Strategy::SimpleShuffle => return pick(deployments, in_tier, rand01),
        Strategy::LeastBusy => Box::new(|i| f64::from(views[i].in_flight)),
        Strategy::LatencyBased { .. } => Box::new(|i| views[i].latency_ms.unwrap_or(0.0)),
        Strategy::UsageBased => Box::new(|i| {
            views[i].tokens_this_minute as f64 * 1e6 + f64::from(views[i].requests_this_minute)
        }),
        Strategy::CostBased => Box::new(|i| unit_cost(&deployments[i])),
    };
    let candidates: Vec<usize> = (0..deployments.len()).filter(|i| in_tier(*i)).collect();
    let best = candidates
        .iter()
        .map(|i| key(*i))
        .fold(f64::INFINITY, f64::min);
    let limit = match strategy {
        Strategy::LatencyBased { buffer } if best.is_finite() => best * (1.0 + buffer),
        _ => best,
    };
    let near: Vec<usize> = candidates
        .into_iter()
        .filter(|i| key(*i) <= limit || (key(*i).is_infinite() && best.is_infinite()))
        .collect();
    let i = *near.get(((rand01 * near.len() as f64) as usize).min(near.len().saturating_sub(1)))?;
    Some((i, &deployments[i]))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{load_str, Env};
    use crate::router::Router;

    fn group(yaml: &str) -> Vec<Deployment> {
        let cfg = load_str(
            yaml,
            Path::new("."),
            &Env::isolated(Vec::<(String, String)>::new()),
        )
        .unwrap();
        let r = Router::new(&cfg.deployments, &cfg.router.model_group_alias);
        r.resolve("m").unwrap().deployments.to_vec()
    }

    const THREE: &str = "model_list:\n  - {model_name: m, litellm_params: {model: openai/a, api_key: k, input_cost_per_token: 0.00001}}\n  - {model_name: m, litellm_params: {model: openai/b, api_key: k}, model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}}\n  - {model_name: m, litellm_params: {model: openai/c, api_key: k}}\n";

    fn view(in_flight: u32, latency: Option<f64>, tokens: u64) -> View {
        View {
            in_flight,
            local_in_flight: in_flight,
            requests_this_minute: 0,
            tokens_this_minute: tokens,
            latency_ms: latency,
        }
    }

    #[test]
    fn least_busy_picks_the_fewest_in_flight() {
        let d = group(THREE);
        let v = [view(3, None, 0), view(1, None, 0), view(2, None, 0)];
        for r in [0.0, 0.5, 0.99] {
            assert_eq!(
                choose(Strategy::LeastBusy, &d, |_| true, &v, r).unwrap().0,
                1
            );
        }
        assert_eq!(
            choose(Strategy::LeastBusy, &d, |i| i != 1, &v, 0.5)
                .unwrap()
                .0,
            2
        );
    }

    #[test]
    fn latency_prefers_fast_and_unmeasured_deployments_within_the_buffer() {
        let d = group(THREE);
        let v = [
            view(0, Some(100.0), 0),
            view(0, Some(120.0), 0),
            view(0, Some(300.0), 0),
        ];
        assert_eq!(
            choose(
                Strategy::LatencyBased { buffer: 0.0 },
                &d,
                |_| true,
                &v,
                0.9
            )
            .unwrap()
            .0,
            0
        );
        let picks: Vec<usize> = [0.0, 0.99]
            .iter()
            .map(|r| {
                choose(Strategy::LatencyBased { buffer: 0.5 }, &d, |_| true, &v, *r)
                    .unwrap()
                    .0
            })
            .collect();
        assert_eq!(
            picks,
            [0, 1],
            "within 50% of the best both qualify; the slow one never"
        );
        let fresh = [
            view(0, Some(100.0), 0),
            view(0, None, 0),
            view(0, Some(300.0), 0),
        ];
        assert_eq!(
            choose(
                Strategy::LatencyBased { buffer: 0.0 },
                &d,
                |_| true,
                &fresh,
                0.5
            )
            .unwrap()
            .0,
            1,
            "unmeasured deployments get tried"
        );
    }

    #[test]
    fn usage_and_cost_based() {
        let d = group(THREE);
        let v = [view(0, None, 500), view(0, None, 100), view(0, None, 900)];
        assert_eq!(
            choose(Strategy::UsageBased, &d, |_| true, &v, 0.7)
                .unwrap()
                .0,
            1
        );
        assert_eq!(
            choose(Strategy::CostBased, &d, |_| true, &v, 0.7)
                .unwrap()
                .0,
            1,
            "b costs 3e-6 a token pair, a 1e-5, c unknown"
        );
        assert_eq!(
            choose(Strategy::CostBased, &d, |i| i == 2, &v, 0.7)
                .unwrap()
                .0,
            2,
            "unknown prices still route"
        );
        assert!(unit_cost(&d[2]).is_infinite());
    }

    #[test]
    fn names_map_to_strategies() {
        assert_eq!(
            Strategy::from_name(Some("usage-based-routing-v2"), 0.0),
            Strategy::UsageBased
        );
        assert_eq!(
            Strategy::from_name(Some("latency-based-routing"), 0.2),
            Strategy::LatencyBased { buffer: 0.2 }
        );
        assert_eq!(Strategy::from_name(None, 0.0), Strategy::SimpleShuffle);
    }
}
