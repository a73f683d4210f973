"""`skilltree flags` as an operator uses it, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from skilltree.cli import app

runner = CliRunner()


def flags(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["flags", *args])
    return result.exit_code, result.output


def test_set_creates_then_changes_a_flag_and_list_shows_it(workdir: Path) -> None:
    created = flags("set", "new-dashboard", "off", "--rollout", "25", "--description", "Dash")
    changed = flags("set", "new-dashboard", "on", "--no-rollout")
    listed = flags("list")

    assert created == (
        0,
        "created new-dashboard\tdefault off\trollout 25%\t0 user(s), 0 organisation(s)\tDash\n",
    )
    assert changed[0] == 0
    assert changed[1].startswith("updated new-dashboard\tdefault on\trollout -\t")
    assert listed == (
        0,
        "new-dashboard\tdefault on\trollout -\t0 user(s), 0 organisation(s)\tDash\n1 flag(s)\n",
    )


def test_rule_targets_an_existing_user_and_clear_removes_it(workdir: Path) -> None:
    secret = workdir / "password"
    secret.write_text("a long operator passphrase\n", encoding="utf-8")
    made = runner.invoke(
        app, ["user", "create", "ada@example.org", "--name", "Ada", "--password-file", str(secret)]
    )
    assert made.exit_code == 0, made.output
    flags("set", "new-dashboard", "off")

    targeted = flags("rule", "new-dashboard", "on", "--user", "1")
    cleared = flags("rule", "new-dashboard", "clear", "--user", "1")

    assert targeted[0] == 0
    assert "1 user(s), 0 organisation(s)" in targeted[1]
    assert "0 user(s), 0 organisation(s)" in cleared[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "Bad_Key", "on"], "is not a flag key"),
        (["set", "new-dashboard", "maybe"], "maybe"),
        (["set", "new-dashboard", "on", "--rollout", "101"], "less than or equal to 100"),
        (["set", "new-dashboard", "on", "--rollout", "5", "--no-rollout"], "contradict"),
        (["rule", "no-such-flag", "on", "--user", "1"], "There is no feature flag 'no-such-flag'"),
        (["rule", "new-dashboard", "on", "--user", "1", "--org", "1"], "exactly one"),
        (["rule", "new-dashboard", "on", "--org", "999"], "There is no organisation with id 999"),
        (["delete", "no-such-flag"], "There is no feature flag"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message_and_changes_nothing(
    workdir: Path, args: list[str], message: str
) -> None:
    flags("set", "new-dashboard", "off")

    code, output = flags(*args)

    assert code == 2
    assert message in output
    assert flags("list")[1].startswith("new-dashboard\tdefault off\trollout -\t0 user(s)")


def test_delete_removes_the_flag(workdir: Path) -> None:
    flags("set", "new-dashboard", "on")

    assert flags("delete", "new-dashboard") == (0, "deleted new-dashboard\n")
    assert flags("list") == (0, "0 flag(s)\n")
