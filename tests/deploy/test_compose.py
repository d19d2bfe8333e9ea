"""compose.yaml rendered with every combination of profiles (no container engine needed): the services,
their health checks, networks, what is published, what is trusted, how Prometheus reaches the metrics."""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.deploycheck.compose import (
    ComposeError,
    all_profiles,
    interpolate,
    load,
    parse_port,
    read_env_file,
    render,
    service_networks,
    variables,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
BASE = {"postgres", "redis", "migrate", "api", "worker", "prometheus", "grafana"}
BY_PROFILE = {"proxy": {"caddy"}, "backup": {"backup"}}
APP = {"migrate", "api", "worker"}
# Ports that must never be reachable from outside the host's compose networks.
INTERNAL_PORTS = {5432: "PostgreSQL", 6379: "Redis", 9100: "worker metrics"}
LOOPBACK_ONLY = {"prometheus", "grafana"}


def example_env() -> dict[str, str]:
    """What an operator's .env looks like: .env.example with every required secret filled in."""
    env = read_env_file(ROOT / ".env.example")
    for key, value in list(env.items()):
        if not value:
            env[key] = f"test-{key.lower()}-value"
    return env


def profile_sets() -> list[tuple[str, ...]]:
    names = sorted(all_profiles(COMPOSE))
    return [combo for n in range(len(names) + 1) for combo in itertools.combinations(names, n)]


@pytest.fixture(params=profile_sets(), ids=lambda p: "+".join(p) or "default")
def project(request: pytest.FixtureRequest) -> tuple[tuple[str, ...], dict[str, Any]]:
    return request.param, render(COMPOSE, example_env(), request.param)


def published(svc: dict[str, Any]) -> list[Any]:
    return [parse_port(p) for p in svc.get("ports") or []]


def test_every_profile_combination_is_known() -> None:
    assert all_profiles(COMPOSE) == set(BY_PROFILE)


def test_services_of_each_profile(project: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    profiles, model = project
    expected = BASE.union(*(BY_PROFILE[p] for p in profiles))
    assert set(model["services"]) == expected


def test_long_running_services_have_health_checks(project: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    _, model = project
    for name, svc in model["services"].items():
        hc = svc.get("healthcheck") or {}
        if svc.get("restart") == "no":
            assert name == "migrate", f"{name} is one-shot"
            continue
        assert svc.get("restart") == "unless-stopped", name
        assert hc.get("test") and not hc.get("disable"), f"{name} has no health check"
        assert {"interval", "timeout", "retries"} <= set(hc), name


def test_dependencies_wait_for_health_or_completion(project: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    _, model = project
    services = model["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep, cfg in deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps):
            cond = (cfg or {}).get("condition", "service_started")
            if cond == "service_healthy":
                assert services[dep].get("healthcheck", {}).get("test"), f"{name} waits for {dep}'s health check"
            if cond == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{name} waits for {dep} to finish"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_no_internal_port_is_published(project: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    _, model = project
    for name, svc in model["services"].items():
        for port in published(svc):
            assert port.target not in INTERNAL_PORTS, f"{name} publishes {INTERNAL_PORTS[port.target]}"
            if name in LOOPBACK_ONLY:
                assert port.host_ip == "127.0.0.1", f"{name} must be published on loopback only"
    assert not model["services"]["worker"].get("ports"), "worker metrics are scraped over the backend network"
    for name in ("postgres", "redis", "migrate"):
        assert not model["services"][name].get("ports"), name


def test_networks_keep_the_data_stores_internal(project: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    _, model = project
    nets = model["networks"]
    assert nets["backend"].get("internal") is True
    services = model["services"]
    assert set(service_networks(services["postgres"])) == {"backend"}
    assert set(service_networks(services["redis"])) == {"backend"}
    assert set(service_networks(services["migrate"])) == {"backend"}
    # every service that publishes a port is on a network that can carry it (not only internal ones)
    for name, svc in services.items():
        if svc.get("ports"):
            assert any(not nets[n].get("internal") for n in service_networks(svc)), name
    # Prometheus shares a network with everything it scrapes; Grafana reaches Prometheus
    prom = set(service_networks(services["prometheus"]))
    assert prom & set(service_networks(services["api"])) and prom & set(service_networks(services["worker"]))
    assert prom & set(service_networks(services["grafana"]))
    # the worker's only non-internal network is its own: no other service can reach its metrics port there
    for net in service_networks(services["worker"]):
        if not nets[net].get("internal"):
            assert [n for n, s in services.items() if net in service_networks(s)] == ["worker"]


def test_app_containers_are_locked_down(project: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    _, model = project
    for name in APP:
        svc = model["services"][name]
        assert svc["read_only"] is True, name
        assert svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert any(str(t).startswith("/tmp") for t in svc["tmpfs"]), name
        assert svc["init"] is True, name
    for name, svc in model["services"].items():
        assert svc.get("cap_drop") == ["ALL"] or name in {"postgres", "redis"}, f"{name} keeps capabilities"


def test_api_trusts_forwarded_headers_only_from_caddy() -> None:
    model = render(COMPOSE, example_env(), ["proxy"])
    api, caddy = model["services"]["api"], model["services"]["caddy"]
    trusted = api["environment"]["STOCK_TRACKER_FORWARDED_ALLOW_IPS"]
    caddy_ip = caddy["networks"]["frontend"]["ipv4_address"]
    assert trusted == caddy_ip, "exactly Caddy's address, not a network other containers can join"
    subnet = ipaddress.ip_network(model["networks"]["frontend"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(caddy_ip) in subnet
    assert "frontend" in service_networks(api)
    assert trusted not in ("*", "0.0.0.0/0")


def test_prometheus_scrapes_every_process_with_the_token() -> None:
    model = render(COMPOSE, example_env())
    services = model["services"]
    prom = services["prometheus"]
    assert {"source": "metrics_token", "target": "metrics_token"} in prom["secrets"]
    assert model["secrets"]["metrics_token"] == {"environment": "STOCK_TRACKER_METRICS_TOKEN"}
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    worker_port = int(services["worker"]["environment"]["STOCK_TRACKER_WORKER_METRICS_PORT"])
    assert str(worker_port) in [str(p) for p in services["worker"]["expose"]]
    for job, service, port in (("stock-tracker-api", "api", 8000), ("stock-tracker-worker", "worker", worker_port)):
        sd = jobs[job]["dns_sd_configs"][0]
        assert sd["names"] == [service] and sd["port"] == port
        assert jobs[job]["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/metrics_token"}
        assert (
            services[service]["environment"]["STOCK_TRACKER_METRICS_TOKEN"] == "test-stock_tracker_metrics_token-value"
        )
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]
    mounts = {v.split(":")[1] for v in prom["volumes"] if v.startswith("./")}
    assert "/etc/prometheus/alerts.yml" in mounts
    # the worker's health check must send the token too, or it fails once /metrics requires it
    assert "STOCK_TRACKER_METRICS_TOKEN" in " ".join(services["worker"]["healthcheck"]["test"])


def test_backup_profile_dumps_nightly_with_retention() -> None:
    model = render(COMPOSE, example_env(), ["backup"])
    backup = model["services"]["backup"]
    assert backup["image"] == model["services"]["postgres"]["image"], "pg_dump of the server's major version"
    assert backup["entrypoint"][-1] == "/backup/backup.sh" and backup["command"] == ["daemon"]
    env = backup["environment"]
    assert env["BACKUP_AT"] == "02:30" and env["BACKUP_KEEP_DAYS"] == "14"
    assert env["PGHOST"] == "postgres" and set(service_networks(backup)) == {"backend"}
    assert backup["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert any(v.endswith(":/backups") for v in backup["volumes"])


def test_bind_mounted_files_exist() -> None:
    model = render(COMPOSE, example_env(), sorted(all_profiles(COMPOSE)))
    for name, svc in model["services"].items():
        for v in svc.get("volumes") or []:
            source = str(v).split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_no_secret_value_in_the_file() -> None:
    raw = load(COMPOSE)
    blocks = [svc.get("environment") or {} for svc in raw["services"].values()]
    blocks += [v for k, v in raw.items() if k.startswith("x-") and isinstance(v, dict)]
    for block in blocks:
        for key, value in block.items():
            if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN", "KEYS")) and key != "<<":
                assert value == "" or "${" in str(value), f"{key} must come from .env, not the file"


def test_every_variable_is_documented_in_env_example() -> None:
    documented = set(read_env_file(ROOT / ".env.example"))
    text = (ROOT / ".env.example").read_text()
    for name in variables(COMPOSE.read_text()):
        assert name in documented or f"# {name}=" in text, f"{name} is not in .env.example"


def test_a_missing_required_secret_stops_with_its_name() -> None:
    env = example_env()
    del env["STOCK_TRACKER_API_KEY_SECRET"]
    with pytest.raises(ComposeError, match="STOCK_TRACKER_API_KEY_SECRET"):
        render(COMPOSE, env)
    env = example_env()
    env["STOCK_TRACKER_METRICS_TOKEN"] = ""
    with pytest.raises(ComposeError, match="STOCK_TRACKER_METRICS_TOKEN"):
        render(COMPOSE, env)


def test_interpolation_follows_compose() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert interpolate("${A:-x} ${EMPTY:-d} ${EMPTY-d} ${NOPE-d} $$A ${A:+set} ${NOPE:+set}", env) == "1 d  d $A set "
    assert interpolate("${NOPE:-${A}}", env) == "1"
    with pytest.raises(ComposeError, match="NOPE"):
        interpolate("${NOPE:?give it}", env)
    assert parse_port("127.0.0.1:9090:9090") == parse_port(
        {"host_ip": "127.0.0.1", "published": "9090", "target": 9090}
    )
    assert parse_port("443:443/udp").protocol == "udp"


# `docker compose config` with every profile runs in CI's image job (.github/workflows/ci.yml), where an
# engine and the compose plugin exist; here the file is rendered and checked by our own reader above.


def test_ci_smoke_override_only_adds_the_sandbox() -> None:
    """deploy/ci/compose.smoke.yaml (CI's smoke test) adds the sandbox and points the app at it, nothing else."""
    override = load(ROOT / "deploy" / "ci" / "compose.smoke.yaml")
    base = render(COMPOSE, example_env(), ["backup"])
    assert set(override["services"]) - set(base["services"]) == {"sandbox"}
    sandbox = override["services"]["sandbox"]
    assert [parse_port(p).host_ip for p in sandbox["ports"]] == ["127.0.0.1"]
    assert set(sandbox["networks"]) <= set(base["networks"])
    for name in ("api", "worker"):
        env = override["services"][name]["environment"]
        assert set(env) == {"STOCK_TRACKER_WB_BASE_URL", "STOCK_TRACKER_OZON_BASE_URL"}
        assert all(v.startswith("http://sandbox:8100/") for v in env.values())
