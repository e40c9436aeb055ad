#!/usr/bin/env python3
"""Lints and renders the Helm chart with Helm's own Go SDK (the helm-python-sdk package from
PyPI binds it; the helm CLI is not packaged in Debian or PyPI). Renders the default values
and every ci/*-values.yaml into OUTDIR/<values>/, one file per template, for
kubernetes-validate. Fails on lint errors, render errors, and when an option of
ci/all-features-values.yaml does not show in its output.

usage: helm-render.py CHART OUTDIR
"""
import pathlib
import sys

import helm_python as helm
import yaml


def render(chart_dir, values, outdir):
    with helm.Chart.load(str(chart_dir)) as chart:
        manifests = chart.render(values, name="maildrift", namespace="maildrift")
    outdir.mkdir(parents=True, exist_ok=True)
    documents = []
    for name, text in sorted(manifests.items()):
        if not name.endswith((".yaml", ".yml")) or not text.strip():
            continue
        target = outdir / pathlib.Path(name).name
        target.write_text(text)
        documents.extend(d for d in yaml.safe_load_all(text) if d)
    return documents


def main():
    chart_dir, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    lint = helm.lint(str(chart_dir))
    for message in lint["messages"]:
        print(f"helm lint: {message['path']}: {message['error']}")
    # Severities: 1 info, 2 warning, 3 error; warnings fail as with `helm lint --strict`.
    if lint["errors"] or any(m["severity"] >= 2 for m in lint["messages"]):
        sys.exit("helm lint failed")
    cases = {"default": {}}
    for file in sorted((chart_dir / "ci").glob("*-values.yaml")):
        cases[file.stem] = yaml.safe_load(file.read_text()) or {}
    rendered = {}
    for case, values in cases.items():
        documents = render(chart_dir, values, out / case)
        rendered[case] = documents
        kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in documents)
        print(f"helm template ({case}): {', '.join(kinds)}")

    # The options of the all-features values show in what they render.
    docs = {d["kind"]: d for d in rendered["all-features-values"]}
    expected = {"Deployment", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap",
                "PodDisruptionBudget", "NetworkPolicy", "PersistentVolumeClaim"}
    missing = expected - docs.keys()
    assert not missing, f"all-features renders no {missing}"
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "@sha256:" in container["image"], container["image"]
    assert "--log.level=debug" in container["args"]
    assert any(e["name"] == "FEISHU_SECRET" for e in container["env"])
    assert any(m["name"] == "secrets" for m in container["volumeMounts"])
    assert any(v["name"] == "secrets" for v in pod["volumes"])
    config = next(v for v in pod["volumes"] if v["name"] == "config")
    assert config == {"name": "config", "secret": {"secretName": "maildrift-config"}}, config
    assert docs["Deployment"]["metadata"]["labels"]["team"] == "mail"
    dashboards = docs["ConfigMap"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(dashboards["data"]) == {p.name for p in pathlib.Path("dashboards").glob("*.json")}
    source = yaml.safe_load(pathlib.Path("deploy/prometheus/rules.yml").read_text())
    assert docs["PrometheusRule"]["spec"] == source, "PrometheusRule spec differs from rules.yml"
    assert {d["kind"] for d in rendered["sharded-values"]} >= {"StatefulSet", "PodDisruptionBudget"}
    print("helm: lint clean, every values file renders, all-features options present")


if __name__ == "__main__":
    main()
