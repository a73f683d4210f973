"""12-factor settings: environment, .env, secret files, and one clear report of every mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skilltree.platform.config import (
    AppSettings,
    DatabaseSettings,
    RateLimitSettings,
    Settings,
    SettingsError,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SKILLTREE_* variable or .env file of the developer's leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("SKILLTREE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings()

    assert settings.database.url == "sqlite+aiosqlite:///var/skilltree.db"
    assert settings.app.env == "development"
    assert settings.http.port == 8000


def test_each_group_reads_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILLTREE_DATABASE_URL", "postgresql+asyncpg://db/skilltree")
    monkeypatch.setenv("SKILLTREE_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("SKILLTREE_IMPORT_MAX_DEPTH", "5")

    settings = load_settings()

    assert settings.database.url == "postgresql+asyncpg://db/skilltree"
    assert settings.log.level == "DEBUG"
    assert settings.importing.max_depth == 5


def test_a_plain_postgres_url_gets_the_async_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILLTREE_DATABASE_URL", "postgres://db/skilltree")

    assert load_settings().database.url == "postgresql+asyncpg://db/skilltree"


def test_a_dotenv_file_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SKILLTREE_HTTP_PORT=9000\nSKILLTREE_LOG_LEVEL=ERROR\n")
    monkeypatch.setenv("SKILLTREE_LOG_LEVEL", "WARNING")

    settings = load_settings()

    assert settings.http.port == 9000
    assert settings.log.level == "WARNING"


def test_a_secret_is_read_from_the_file_named_by_the_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "secret_key"
    secret.write_text("s3cr3t-from-a-mounted-file\n")
    monkeypatch.setenv("SKILLTREE_SECRET_KEY_FILE", str(secret))

    settings = load_settings()

    assert settings.app.secret_key.get_secret_value() == "s3cr3t-from-a-mounted-file"
    assert "s3cr3t" not in repr(settings)


def test_every_bad_setting_is_reported_at_once_by_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SKILLTREE_HTTP_PORT", "eighty")
    monkeypatch.setenv("SKILLTREE_DATABASE_URL", "oracle://db/x")
    monkeypatch.setenv("SKILLTREE_LOG_LEVEL", "LOUD")

    with pytest.raises(SettingsError) as raised:
        load_settings()

    message = str(raised.value)
    for variable in ("SKILLTREE_HTTP_PORT", "SKILLTREE_DATABASE_URL", "SKILLTREE_LOG_LEVEL"):
        assert variable in message


def test_an_unreadable_secret_file_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SKILLTREE_SECRET_KEY_FILE", str(tmp_path / "missing"))

    with pytest.raises(SettingsError, match="SKILLTREE_SECRET_KEY_FILE"):
        load_settings()


def test_production_refuses_the_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILLTREE_ENV", "production")

    with pytest.raises(SettingsError, match="SKILLTREE_SECRET_KEY"):
        load_settings()


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILLTREE_ENV", "production")
    monkeypatch.setenv("SKILLTREE_SECRET_KEY", "k" * 48)

    assert load_settings().app.env == "production"


def test_settings_can_be_built_explicitly_without_the_environment() -> None:
    settings = Settings(
        app=AppSettings(env="test"), database=DatabaseSettings(url="sqlite+aiosqlite:///x.db")
    )

    assert settings.database.is_sqlite


def test_every_setting_is_documented() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    settings = Settings()
    missing = []
    for group in Settings.model_fields:
        model = getattr(settings, group)
        prefix = model.model_config["env_prefix"]
        for field in type(model).model_fields:
            variable = f"{prefix}{field}".upper()
            if not re.search(rf"`{variable}`", documented):
                missing.append(variable)
    assert missing == []


def test_a_list_setting_is_read_as_json_from_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    providers = tmp_path / "oidc.json"
    providers.write_text(
        '[{"name": "company", "issuer": "https://id.example.com",'
        ' "client_id": "skilltree", "client_secret": "from-the-provider"}]'
    )
    monkeypatch.setenv("SKILLTREE_AUTH_OIDC_PROVIDERS_FILE", str(providers))

    [provider] = load_settings().auth.oidc_providers

    assert provider.issuer == "https://id.example.com"
    assert provider.client_secret.get_secret_value() == "from-the-provider"


def test_a_file_that_is_not_json_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    providers = tmp_path / "oidc.json"
    providers.write_text("not json")
    monkeypatch.setenv("SKILLTREE_AUTH_OIDC_PROVIDERS_FILE", str(providers))

    with pytest.raises(SettingsError, match="SKILLTREE_AUTH_OIDC_PROVIDERS_FILE does not hold"):
        load_settings()


def test_provider_secrets_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SKILLTREE_AUTH_OIDC_PROVIDERS",
        '[{"name": "x", "issuer": "http://idp.example", "client_id": "a",'
        ' "client_secret": "hunter2-hunter2"}]',
    )

    with pytest.raises(SettingsError, match="https") as raised:
        load_settings()

    assert "hunter2" not in str(raised.value)


def test_the_default_rate_limits_parse_although_start_up_skips_checking_them() -> None:
    from limits import parse

    for name in ("auth", "write", "read"):
        default = RateLimitSettings.model_fields[name].default
        assert parse(default).amount > 0


def test_a_rate_limit_that_was_set_is_still_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILLTREE_RATE_LIMIT_WRITE", "often")
    with pytest.raises(SettingsError, match="SKILLTREE_RATE_LIMIT_WRITE"):
        load_settings()
