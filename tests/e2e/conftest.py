"""Fixtures for the ferrolite end-to-end suite.

Starts the REAL ``ferrolite`` binary once per session against a generated
LiteLLM-format config, next to an in-process mock OpenAI upstream
(``mock_upstream.py``), and hands tests an ``openai.OpenAI`` client.

Binary: ``$FERROLITE_BIN``, else ``$CARGO_TARGET_DIR/debug/ferrolite``, else
``/var/tmp/ferrolite-target/debug/ferrolite``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from mock_upstream import MockUpstream, start_mock_upstream

MASTER_KEY = "sk-e2e-master-0123456789abcdef0123456789abcdef"
UPSTREAM_KEY = "sk-upstream-deployment-key-e2e"
MOCK_TEXT = "Hello from the ferrolite e2e mock model."
READY_TIMEOUT_S = 10.0


@dataclass
class Gateway:
    base_url: str  # e.g. http://127.0.0.1:PORT
    master_key: str
    config_path: Path
    stderr_path: Path
    proc: subprocess.Popen

    @property
    def api_base(self) -> str:
        return self.base_url + "/v1"

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""


def _binary_path() -> Path:
    env = os.environ.get("FERROLITE_BIN")
    if env:
        return Path(env)
    target = os.environ.get("CARGO_TARGET_DIR") or "/var/tmp/ferrolite-target"
    return Path(target) / "debug" / "ferrolite"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config_yaml(upstream_base: str, dead_base: str) -> str:
    # Hand-written YAML (no PyYAML dependency); every value is quoted.
    return f"""\
model_list:
  - model_name: "mock-chat"
    litellm_params:
      model: "openai/gpt-4o-mini"
      mock_response: "{MOCK_TEXT}"
  - model_name: "mock-embed"
    litellm_params:
      model: "openai/text-embedding-3-small"
      mock_response: "mock"
    model_info:
      mode: "embedding"
  - model_name: "upstream-chat"
    litellm_params:
      model: "openai/gpt-upstream"
      api_base: "{upstream_base}"
      api_key: "{UPSTREAM_KEY}"
  - model_name: "upstream-ratelimited"
    litellm_params:
      model: "openai/rate-limited"
      api_base: "{upstream_base}"
      api_key: "{UPSTREAM_KEY}"
  - model_name: "upstream-missing"
    litellm_params:
      model: "openai/missing"
      api_base: "{upstream_base}"
      api_key: "{UPSTREAM_KEY}"
  - model_name: "upstream-tools"
    litellm_params:
      model: "openai/tool-caller"
      api_base: "{upstream_base}"
      api_key: "{UPSTREAM_KEY}"
  - model_name: "upstream-dead"
    litellm_params:
      model: "openai/gpt-dead"
      api_base: "{dead_base}"
      api_key: "{UPSTREAM_KEY}"
  - model_name: "claude-upstream"
    litellm_params:
      model: "anthropic/claude-sonnet-4-5"
      api_base: "{upstream_base.removesuffix('/v1')}"
      api_key: "{UPSTREAM_KEY}"
  - model_name: "dialect-chat"
    litellm_params:
      model: "openai/gpt-4o-dialect"
      api_base: "{upstream_base}"
      api_key: "{UPSTREAM_KEY}"
  - model_name: "dialect-reasoner"
    litellm_params:
      model: "openai/o3-dialect"
      api_base: "{upstream_base}"
      api_key: "{UPSTREAM_KEY}"

litellm_settings:
  num_retries: 0
  request_timeout: 10
  callbacks: ["prometheus"]

general_settings:
  master_key: "{MASTER_KEY}"
"""


CONFIGURED_MODELS = [
    "mock-chat",
    "mock-embed",
    "upstream-chat",
    "upstream-ratelimited",
    "upstream-missing",
    "upstream-dead",
    "claude-upstream",
    "dialect-chat",
    "dialect-reasoner",
    "upstream-tools",
]


@pytest.fixture(scope="session")
def upstream() -> MockUpstream:
    mock = start_mock_upstream()
    yield mock
    mock.close()


@pytest.fixture(scope="session")
def gateway(upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    binary = _binary_path()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(
            f"ferrolite binary not found at {binary}; build it with "
            "`cargo build -p ferrolite-server --bin ferrolite` or set FERROLITE_BIN",
            pytrace=False,
        )

    tmp = tmp_path_factory.mktemp("ferrolite")
    # A port nobody listens on: the "unreachable upstream" deployment points here.
    dead_base = f"http://127.0.0.1:{_free_port()}/v1"
    config_path = tmp / "config.yaml"
    config_path.write_text(_config_yaml(upstream.base_url, dead_base))
    stderr_path = tmp / "ferrolite.stderr.log"

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM_", "OPENAI_"))}
    env.setdefault("RUST_LOG", "info")

    port = _free_port()
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [str(binary), "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    gw = Gateway(f"http://127.0.0.1:{port}", MASTER_KEY, config_path, stderr_path, proc)

    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        ready = False
        last_err = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"ferrolite exited early with code {proc.returncode}.\nstderr:\n{gw.stderr()}",
                    pytrace=False,
                )
            if "ready on http://" in gw.stderr():
                try:
                    r = httpx.get(gw.base_url + "/health/readiness", timeout=1.0)
                    if r.status_code == 200:
                        ready = True
                        break
                    last_err = f"readiness answered {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as e:  # not accepting yet
                    last_err = repr(e)
            time.sleep(0.05)
        if not ready:
            pytest.fail(
                f"ferrolite not ready within {READY_TIMEOUT_S}s ({last_err}).\nstderr:\n{gw.stderr()}",
                pytrace=False,
            )
        yield gw
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def client(gateway: Gateway) -> openai.OpenAI:
    c = openai.OpenAI(base_url=gateway.api_base, api_key=gateway.master_key, max_retries=0, timeout=15.0)
    yield c
    c.close()


@pytest.fixture(scope="session")
def http(gateway: Gateway) -> httpx.Client:
    with httpx.Client(
        base_url=gateway.base_url,
        headers={"Authorization": f"Bearer {gateway.master_key}"},
        timeout=15.0,
    ) as c:
        yield c
