"""deploy/: the Prometheus alert rules and the Grafana dashboard name only metrics that
/metrics gives, and the compose profile starts both with them."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from broker import overview
from broker.core import metrics
from broker.core.connection import Redis, sentinel_hosts
from broker.core.defaults import CELERY_STOP_WAIT
from broker.core.settings import Settings
from broker.delivery.delivery_loop import DRAIN_WRITE_TIMEOUT
from web.blueprints.metrics import SwitchboardMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
METRIC = re.compile(r"\bswitchboard_[a-z_]+\b")


def exposed(fake_redis: Redis) -> set[str]:
    """Every sample name /metrics gives, with a series of each counter and histogram."""
    counts = metrics.Counts()
    for metric in metrics.ALL:
        labels = tuple("x" for _ in metric.labels)
        if metric.kind == "counter":
            counts.counters[metric.name] = {labels: 1}
        else:
            buckets = [1] * (len(metric.buckets) + 1)
            counts.histograms[metric.name] = {labels: metrics.Histogram(buckets, 1.0, 1)}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        SwitchboardMetrics(counts, overview.take(fake_redis), counting=True, per_channel=True)
    )
    text = generate_latest(registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def expressions() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    found = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "switchboard.json").read_text())
    found += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return found


def test_rules_and_dashboard_name_only_exposed_metrics(fake_redis: Redis) -> None:
    names = exposed(fake_redis)
    used = {name for expr in expressions() for name in METRIC.findall(expr)}
    assert used and used <= names, used - names


#: What comes before a series folded over the web processes scraped: `max` (or `max by`,
#: `max without`) of it, or of its rate or increase.
FOLDED = re.compile(r"\bmax(\s+(by|without)\s*\([a-z_, ]*\))?\s*\(\s*((rate|increase)\(\s*)?$")


def test_every_series_is_folded_with_max_before_it_is_summed() -> None:
    """Each scraped web process gives the whole deployment's series: a `sum` over the raw
    series counts them once per process scraped."""
    for expr in expressions():
        for name in METRIC.finditer(expr):
            assert FOLDED.search(expr[: name.start()]), expr


def test_the_alerts_the_operators_need_are_there() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    for wanted, metric in [
        ("SwitchboardEndpointDisabled", 'switchboard_endpoints{state="disabled"}'),
        ("SwitchboardDeadLettersGrowing", "switchboard_deliveries_total"),
        ("SwitchboardQueueAgeHigh", "switchboard_queue_oldest_age_seconds"),
        ("SwitchboardNoWorkerHeartbeat", 'switchboard_processes_alive{role="worker"}'),
    ]:
        assert metric in alerts[wanted]["expr"]
        assert alerts[wanted]["annotations"]["summary"]


def test_the_dashboard_is_a_grafana_dashboard_of_distinct_panels() -> None:
    dashboard: dict[str, Any] = json.loads(
        (DEPLOY / "grafana" / "dashboards" / "switchboard.json").read_text()
    )
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert dashboard["uid"] == "switchboard" and len(ids) == len(set(ids)) >= 10
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "prometheus" and panel["targets"]


def test_the_monitoring_profile_starts_prometheus_and_grafana_with_deploy_s_files() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
    mounted = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for path in (
        "./deploy/prometheus/prometheus.yml",
        "./deploy/prometheus/alerts.yml",
        "./deploy/grafana/provisioning",
        "./deploy/grafana/dashboards",
    ):
        assert path in mounted
        assert (ROOT / path).exists()
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["web:8080"]
    assert "profiles" not in services["web"]


def test_every_worker_is_given_the_time_its_stop_takes() -> None:
    """A worker told to stop lets its turns commit and its attempts end for up to
    SWITCHBOARD_SHUTDOWN_GRACE, then writes what it gathered: past Docker's default 10 s,
    a rolling update killed it mid-way, and its conversations waited out their claims."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    workers = [s for s in services.values() if s.get("command", [None, None])[1] == "worker"]
    assert len(workers) == 4
    needed = Settings().shutdown_grace + DRAIN_WRITE_TIMEOUT + CELERY_STOP_WAIT
    for worker in workers:
        assert float(worker["stop_grace_period"].removesuffix("s")) > needed


def _profile(services: dict[str, Any], profile: str) -> dict[str, Any]:
    return {name: s for name, s in services.items() if profile in s.get("profiles", [])}


def _as_compose_sets(env: dict[str, str]) -> dict[str, str]:
    """The environment as Compose sets it when no variable of the host is given:
    `${NAME:-default}` is the default."""
    return {
        name: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value)) for name, value in env.items()
    }


def test_the_cluster_profile_runs_switchboard_on_a_redis_cluster_and_rabbitmq() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    cluster = _profile(services, "cluster")
    assert len([name for name in cluster if name.startswith("redis-node-")]) == 6
    assert "rabbitmq" in cluster and "proxy" in cluster
    for role in ("web", "worker", "scheduler"):
        running = [name for name in cluster if name.startswith(f"{role}-c")]
        assert len(running) == 2, role
        for name in running:
            env = _as_compose_sets(cluster[name]["environment"])
            settings = Settings.from_env(env)  # accepted as they are
            assert settings.redis_url.startswith("redis+cluster://")
            assert settings.broker_url.startswith("amqp://")
            assert "redis" not in cluster[name].get("depends_on", {})
            if role == "web":  # the proxy's own address: its X-Forwarded-For names the client
                proxy = cluster["proxy"]["networks"]["cluster"]["ipv4_address"]
                trusted = settings.trusted_proxies
                assert trusted == (ipaddress.ip_network(_as_compose_sets({"p": proxy})["p"]),)
    assert (ROOT / "deploy/haproxy/switchboard.cfg").exists()


def test_the_sentinel_profile_runs_switchboard_on_three_sentinels() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    sentinel = _profile(services, "sentinel")
    assert {"redis-master", "redis-replica-1", "redis-replica-2"} <= sentinel.keys()
    assert {"sentinel-1", "sentinel-2", "sentinel-3"} <= sentinel.keys()
    for name in ("web-s", "worker-s", "scheduler-s"):
        settings = Settings.from_env(_as_compose_sets(sentinel[name]["environment"]))
        assert settings.redis_url.startswith("redis+sentinel://")
        assert len(sentinel_hosts(settings.redis_url)) == 3
