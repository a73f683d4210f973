"""The Kubernetes manifests against the Kubernetes API schemas (kubernetes-validate, strict)."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from tests.deploy.support import kubernetes_documents

KUBERNETES_VERSION = "1.37"
DOCUMENTS = list(kubernetes_documents())


@pytest.mark.parametrize(
    "document",
    [document for _path, document in DOCUMENTS],
    ids=[f"{path.name}:{doc['kind']}/{doc['metadata']['name']}" for path, doc in DOCUMENTS],
)
def test_each_manifest_is_valid_for_kubernetes(document: dict[str, object]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_check_refuses_an_unknown_field() -> None:
    deployment = copy.deepcopy(next(doc for _path, doc in DOCUMENTS if doc["kind"] == "Deployment"))
    deployment["spec"]["replica"] = 3

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_api_has_what_a_production_deployment_needs() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _path, doc in DOCUMENTS}

    assert {
        ("Deployment", "skilltree-api"),
        ("Service", "skilltree-api"),
        ("PodDisruptionBudget", "skilltree-api"),
        ("HorizontalPodAutoscaler", "skilltree-api"),
        ("Job", "skilltree-migrate"),
        ("ConfigMap", "skilltree"),
        ("Deployment", "skilltree-worker"),
        ("Deployment", "skilltree-scheduler"),
    } <= kinds
    for _path, doc in DOCUMENTS:
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        if pod is None:
            continue
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]


def test_a_pod_outlives_its_drain_and_graceful_shutdown() -> None:
    configmap = next(doc for _path, doc in DOCUMENTS if doc["kind"] == "ConfigMap")
    api = next(doc for _path, doc in DOCUMENTS if doc["metadata"]["name"] == "skilltree-api")
    drain = float(configmap["data"]["SKILLTREE_HTTP_DRAIN_SECONDS"])
    graceful = float(configmap["data"]["SKILLTREE_HTTP_GRACEFUL_SHUTDOWN_SECONDS"])

    assert api["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain + graceful
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_api_scales_on_cpu_between_a_floor_and_a_ceiling_without_flapping() -> None:
    """The autoscaling policy: never below two pods (one may be drained while the budget keeps
    one), a ceiling, a CPU target with headroom, and a slow scale-down so a dip does not flap."""
    hpa = next(doc for _path, doc in DOCUMENTS if doc["kind"] == "HorizontalPodAutoscaler")
    budget = next(doc for _path, doc in DOCUMENTS if doc["kind"] == "PodDisruptionBudget")
    spec = hpa["spec"]
    [metric] = spec["metrics"]

    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "skilltree-api",
    }
    assert spec["minReplicas"] > budget["spec"]["minAvailable"]
    assert spec["maxReplicas"] > spec["minReplicas"]
    assert metric["resource"]["name"] == "cpu"
    assert 50 <= metric["resource"]["target"]["averageUtilization"] <= 80
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
