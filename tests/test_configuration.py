"""Settings per package, composed: one syntax per type, errors naming the variable, `--help`
that reads nothing, and a configuration reference generated from the declarations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from configuration import SettingsError, from_env, parse_bool
from gateway.settings import Settings, configuration_reference

REPO = Path(__file__).resolve().parent.parent


def test_the_configuration_reference_is_current() -> None:
    written = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert written == configuration_reference(), "run `run.py config reference > docs/configuration.md`"


def test_every_variable_is_documented_once_per_section_with_a_meaning() -> None:
    reference = configuration_reference()
    for variable in ("MONGODB_URI", "REST_CUSTOMER_TOKEN_SECRET", "TELEGRAM_BOT_TOKEN", "OCR_THREADS",
                     "ROUTES_FLEET_FILE", "IVR_ENGINE_<NAME>", "SHOP_TIMEZONE"):  # fmt: skip
        assert f"`{variable}`" in reference, variable


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"GATEWAY_PORT": "eighty"}, "GATEWAY_PORT"),
        ({"NLU_TIMEOUT_SECONDS": "-1"}, "NLU_TIMEOUT_SECONDS"),
        ({"CONSOLE_COOKIE_SECURE": "maybe"}, "CONSOLE_COOKIE_SECURE"),
        ({"TELEGRAM_MODE": "carrier-pigeon"}, "TELEGRAM_MODE"),
        ({"SHOP_TIMEZONE": "Mars/Olympus"}, "SHOP_TIMEZONE"),
        ({"TELEGRAM_BOT_TOKEN": "1:x"}, "TELEGRAM_WEBHOOK_SECRET"),
        ({"EMAIL_ADDRESS": "cs@shop.example"}, "EMAIL_SMTP_RELAY"),
        ({"TWILIO_ACCOUNT_SID": "AC1"}, "TWILIO_FROM_NUMBER"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable) as refused:
        Settings.from_env(env)
    assert refused.value.details["variable"] == variable


def test_one_boolean_syntax_everywhere() -> None:
    for word in ("1", "true", "YES", "on"):
        assert parse_bool("X", word) is True
    for word in ("0", "false", "No", "off", ""):
        assert parse_bool("X", word) is False
    assert Settings.from_env({"EMAIL_SMTP_STARTTLS": "on"}).channel("email").smtp_starttls is True
    assert Settings.from_env({"CONSOLE_COOKIE_SECURE": "off"}).console.cookie_secure is False


def test_help_reads_no_settings() -> None:
    """A bad GATEWAY_PORT used to break even `--help` (the parser read the settings)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "--help"],
        env={"GATEWAY_PORT": "not-a-port", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "serve" in result.stdout, result.stderr
    checked = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "config", "check"],
        env={"GATEWAY_PORT": "not-a-port", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 2 and "GATEWAY_PORT" in checked.stderr


def test_sections_change_as_whole_objects() -> None:
    settings = Settings().with_changes(gateway__port=9000).with_channel("telegram", bot_token="1:x", mode="polling")
    assert settings.gateway.port == 9000 and settings.channel("telegram").enabled
    assert Settings().gateway.port == 8080


def test_a_placeholder_secret_is_refused_at_start() -> None:
    """Security (low): the example files' CHANGE-ME was accepted as a secret everyone knows."""
    from channels.rest import RestSettings

    for placeholder in ("CHANGE-ME", "changeme", "secret"):
        with pytest.raises(SettingsError) as refused:
            from_env(RestSettings, {"REST_WEBHOOK_TOKEN": placeholder})
        assert refused.value.details["variable"] == "REST_WEBHOOK_TOKEN"
    assert from_env(RestSettings, {"REST_WEBHOOK_TOKEN": "k3r9-unguessable"}).webhook_token == "k3r9-unguessable"
