"""deploy/kubernetes: every overlay renders to objects that are valid against Kubernetes' schemas and
hang together (names, labels, ports, probes, the gateway config they mount)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bedrock_mw.config import load_config

from .kustomize import render

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p for p in (KUBE / "overlays").iterdir() if (p / "kustomization.yaml").exists())
# Oldest Kubernetes minor that EKS still supports in standard support, and the newest the validator
# ships: the manifests must be valid on both.
VERSIONS = ("1.31.0", "1.37.0")


def by_kind(objects: list[dict[str, Any]], kind: str, name: str = "bedrock-mw") -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def test_there_is_an_overlay_for_an_existing_and_for_a_bundled_redis() -> None:
    assert [p.name for p in OVERLAYS] == ["bundled-redis", "external-redis"]


def test_the_base_lists_every_manifest_beside_it() -> None:
    base = KUBE / "base"
    listed = set(yaml.safe_load((base / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in base.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_rendered_object_is_valid_kubernetes(overlay: Path, version: str) -> None:
    objects = render(overlay)
    assert objects
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked by its own test below
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_the_deployment_probes_runs_unprivileged_and_drains(overlay: Path) -> None:
    objects = render(overlay)
    deployment = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop
    # Streams are cut (and recorded) by the gateway before the kubelet's SIGKILL would lose them.
    graceful = float(container["args"][container["args"].index("--graceful-timeout") + 1])
    assert pre_stop + graceful < pod["terminationGracePeriodSeconds"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # The read-only root needs a writable /tmp for the metrics directory.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])
    # IRSA: the pod runs as the annotated service account.
    account = by_kind(objects, "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    # The Service, PDB, HPA and policies point at these pods and this port.
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        obj = by_kind(objects, kind)
        selector = obj["spec"]["selector"] if kind == "Service" else None
        selector = selector or obj["spec"].get("selector", {}).get("matchLabels")
        selector = selector or obj["spec"]["podSelector"]["matchLabels"]
        assert selector.items() <= labels.items(), kind
    assert by_kind(objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == "bedrock-mw"
    assert by_kind(objects, "Service")["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_the_service_monitor_scrapes_the_services_metrics_port(overlay: Path) -> None:
    objects = render(overlay)
    monitor = by_kind(objects, "ServiceMonitor")
    service = by_kind(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_egress_allows_https_and_redis_and_never_the_instance_metadata_address() -> None:
    policy = by_kind(render(OVERLAYS[0]), "NetworkPolicy")
    https = [rule for rule in policy["spec"]["egress"] if {"port": 443, "protocol": "TCP"} in rule["ports"]]
    (rule,) = https
    (block,) = rule["to"]
    assert "169.254.0.0/16" in block["ipBlock"]["except"]
    assert any(p["port"] == 6379 for r in policy["spec"]["egress"] for p in r["ports"])


def test_the_bundled_redis_overlay_points_the_gateway_at_its_redis() -> None:
    objects = render(KUBE / "overlays" / "bundled-redis")
    container = by_kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    service = by_kind(objects, "Service", "bedrock-mw-redis")
    assert (
        env["REDIS_URL"] == f"redis://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/0"
    )


def test_the_mounted_gateway_config_is_a_valid_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configmap = by_kind(render(OVERLAYS[0]), "ConfigMap", "bedrock-mw-config")
    path = tmp_path / "gateway.yaml"
    path.write_text(configmap["data"]["gateway.yaml"])
    monkeypatch.setenv("CLAUDE_CODE_KEY_SHA256", "0" * 64)
    monkeypatch.setenv("REDIS_URL", "redis://bedrock-mw-redis:6379/0")
    cfg = load_config(path)
    assert cfg.observability.metrics is True
    assert {p.auth.mode for p in cfg.providers} == {"default_chain"}
    assert cfg.limits.redis_url is not None
    assert os.environ["REDIS_URL"] not in repr(cfg)
