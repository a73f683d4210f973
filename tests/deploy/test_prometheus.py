"""The alert rules and Prometheus configuration, checked and unit-tested by promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.deploy.support import PROMETHEUS, ROOT
from tests.support.processes import require_program

RULES = PROMETHEUS / "rules" / "skilltree.yml"
RULE_TESTS = PROMETHEUS / "tests" / "skilltree_test.yml"
# Tests over days, with rules evaluated every 5 minutes rather than every minute.
SLOW_BURN_TESTS = PROMETHEUS / "tests" / "skilltree_slow_burn_test.yml"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = require_program("promtool", "prometheus")
    return subprocess.run([promtool, *args], capture_output=True, text=True, check=False, cwd=ROOT)


def test_promtool_checks_the_alert_rules() -> None:
    done = _promtool("check", "rules", str(RULES))

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_rules_pass_their_unit_tests() -> None:
    done = _promtool("test", "rules", str(RULE_TESTS), str(SLOW_BURN_TESTS))

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == 2


def test_the_unit_tests_fail_when_a_rule_changes(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    loosened = RULES.read_text().replace("> 300", "> 3000")  # the queue-age threshold
    (tmp_path / "rules" / "skilltree.yml").write_text(loosened)
    (tmp_path / "tests" / "skilltree_test.yml").write_text(RULE_TESTS.read_text())

    done = _promtool("test", "rules", str(tmp_path / "tests" / "skilltree_test.yml"))

    assert done.returncode != 0
    assert "SkilltreeQueueTaskWaiting" in done.stdout + done.stderr


def test_promtool_checks_the_compose_prometheus_configuration() -> None:
    done = _promtool("check", "config", "--syntax-only", str(PROMETHEUS / "prometheus.compose.yml"))

    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_runbook_entry() -> None:
    rules = yaml.safe_load(RULES.read_text())
    runbook = (ROOT / "docs" / "operations.md").read_text().lower()

    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                anchor = rule["annotations"]["runbook"].split("#")[1]
                assert f"### {rule['alert'].lower()}" in runbook, anchor
