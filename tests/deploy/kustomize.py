"""Render the Kustomize overlays in deploy/ without the kustomize binary (CI has none).

Only the features deploy/ uses are supported, and anything else fails loudly rather than being
skipped: ``resources`` (files and directories), ``namespace``, ``labels`` (metadata only) and
JSON 6902 ``patches`` with ``add`` and ``replace``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_KNOWN = {"apiVersion", "kind", "resources", "namespace", "labels", "patches"}
# Kinds that are not namespaced (the namespace transformer leaves them alone).
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def render(directory: Path) -> list[dict[str, Any]]:
    """Every object the kustomization in ``directory`` produces."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - _KNOWN
    if unknown:
        raise ValueError(f"{directory}: kustomization fields this renderer does not support: {unknown}")
    objects: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        path = (directory / resource).resolve()
        if path.is_dir():
            objects.extend(render(path))
        else:
            objects.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    for label_set in spec.get("labels", []):
        if set(label_set) - {"pairs"}:
            raise ValueError(f"{directory}: only metadata label pairs are supported")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label_set["pairs"])
    for patch in spec.get("patches", []):
        target = patch["target"]
        matched = [
            o for o in objects if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]
        ]
        if not matched:
            raise ValueError(f"{directory}: patch target {target} matches nothing")
        for obj in matched:
            for op in yaml.safe_load(patch["patch"]):
                _apply(obj, op)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in _CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
    return objects


def _apply(obj: dict[str, Any], op: dict[str, Any]) -> None:
    if op["op"] not in ("add", "replace"):
        raise ValueError(f"unsupported JSON patch op {op['op']!r}")
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        if last == "-":
            node.append(op["value"])
        elif op["op"] == "add":
            node.insert(int(last), op["value"])
        else:
            node[int(last)] = op["value"]
    else:
        if op["op"] == "replace" and last not in node:
            raise ValueError(f"replace of missing path {op['path']}")
        node[last] = op["value"]
