"""Whether one of our alert rules fires on what a scrape of `/metrics` showed.

The rule is not re-implemented here: promtool (Prometheus's own rule engine) evaluates
`deploy/prometheus/alerts.yml` on the scraped samples, held constant for longer than the
rule's `for:`, in a unit test written for that one alert.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from templator.config import PROJECT_ROOT

RULES = PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def rules() -> list[dict[str, Any]]:
    """Every rule of alerts.yml, as written."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _rule(alert: str) -> dict[str, Any]:
    found = [rule for rule in rules() if rule.get("alert") == alert]
    if not found:
        raise KeyError(f"no alert {alert!r} in {RULES}")
    return found[0]


def _series(scraped: str, names: set[str]) -> list[dict[str, str]]:
    """The scraped samples of the metrics `names`, as promtool input series."""
    series = []
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            if sample.name not in names:
                continue
            labels = {**sample.labels, "instance": "api"}
            inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            series.append({"series": f"{sample.name}{{{inner}}}", "values": f"{sample.value}x15"})
    return series


def fires(scraped: str, alert: str) -> bool:
    """True when `alert` fires on the samples of `scraped` (the text of one scrape)."""
    rule = _rule(alert)
    annotations = rule.get("annotations", {})
    assert not any("{{" in str(v) for v in annotations.values()), (
        f"{alert}'s annotations are templates; this check compares them literally"
    )
    series = _series(scraped, set(_NAME.findall(rule["expr"])))
    assert series, f"the scrape has none of the metrics {alert} reads: {rule['expr']}"
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "10m",  # past every `for:` of these rules
                        "alertname": alert,
                        "exp_alerts": [
                            {"exp_labels": rule.get("labels", {}), "exp_annotations": annotations}
                        ],
                    }
                ],
            }
        ],
    }
    with tempfile.TemporaryDirectory(prefix="templator-alert-") as folder:
        path = Path(folder) / "test.yml"
        path.write_text(yaml.safe_dump(test))
        result = subprocess.run(
            [PROMTOOL, "test", "rules", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    return result.returncode == 0
