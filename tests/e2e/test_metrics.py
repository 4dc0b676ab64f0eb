"""/metrics read by the official Prometheus client library's parsers, as a
Prometheus server or a dashboard exporter would read it."""

from __future__ import annotations

import httpx
import openai
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus


def _scrape(http: httpx.Client) -> dict:
    r = http.get("/metrics")
    assert r.status_code == 200, r.text
    ctype = r.headers["content-type"]
    parse = parse_openmetrics if ctype.startswith("application/openmetrics-text") else parse_prometheus
    return {f.name: f for f in parse(r.text)}


def _value(families: dict, family: str, sample: str, **labels: str) -> float:
    f = families.get(family)
    if f is None:
        return 0.0
    found = [s for s in f.samples if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, found
    return found[0].value if found else 0.0


def test_metrics_parse_with_the_prometheus_client_and_count_exactly(client: openai.OpenAI, http: httpx.Client):
    ok = {"requested_model": "mock-chat", "status_code": "200"}
    before = _scrape(http)
    for i in range(3):
        client.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": f"metrics {i}"}])
    after = _scrape(http)

    # Types as LiteLLM's exporter declares them, read back by the parser.
    assert after["litellm_proxy_total_requests_metric"].type == "counter"
    assert after["litellm_requests_metric"].type == "counter"
    assert after["litellm_request_total_latency_metric"].type == "histogram"
    assert after["litellm_deployment_state"].type == "gauge"
    assert after["process_resident_memory_bytes"].type == "gauge"

    total = "litellm_proxy_total_requests_metric"
    delta = _value(after, total, total + "_total", **ok) - _value(before, total, total + "_total", **ok)
    assert delta == 3

    latency = "litellm_request_total_latency_metric"
    counted = _value(after, latency, latency + "_count", requested_model="mock-chat") - _value(
        before, latency, latency + "_count", requested_model="mock-chat"
    )
    assert counted == 3
    # Histogram buckets are cumulative and end at +Inf with the count.
    buckets = [s for s in after[latency].samples if s.name == latency + "_bucket" and s.labels.get("requested_model") == "mock-chat"]
    assert buckets and buckets[-1].labels["le"] == "+Inf"
    assert buckets[-1].value == _value(after, latency, latency + "_count", requested_model="mock-chat")
    assert all(a.value <= b.value for a, b in zip(buckets, buckets[1:]))
