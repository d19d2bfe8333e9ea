"""Settings are typed, validated once, and production refuses to start without real secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from app.config import SettingsError, load_settings

GOOD = {
    "STOCK_TRACKER_ENV": "production",
    "STOCK_TRACKER_DATABASE_URL": "postgresql://app@db/x",
    "STOCK_TRACKER_REDIS_URL": "redis://r:6379/0",
    "STOCK_TRACKER_JWT_SECRET": "s" * 48,
    "STOCK_TRACKER_API_KEY_SECRET": "k" * 48,
    "STOCK_TRACKER_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
}


def test_production_with_secrets_loads():
    s = load_settings(GOOD)
    assert s.is_production and s.api_port == 8000


@pytest.mark.parametrize(
    "missing",
    [
        "STOCK_TRACKER_JWT_SECRET",
        "STOCK_TRACKER_ENCRYPTION_KEYS",
        "STOCK_TRACKER_DATABASE_URL",
        "STOCK_TRACKER_REDIS_URL",
    ],
)
def test_production_names_the_missing_variable(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        load_settings(env)


def test_weak_secret_and_bad_key_are_refused():
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        load_settings({**GOOD, "STOCK_TRACKER_JWT_SECRET": "short"})
    with pytest.raises(SettingsError, match="not a valid Fernet key"):
        load_settings({**GOOD, "STOCK_TRACKER_ENCRYPTION_KEYS": "nope"})


def test_types_are_validated():
    with pytest.raises(SettingsError, match="api_port"):
        load_settings({**GOOD, "STOCK_TRACKER_API_PORT": "eighty"})
    assert load_settings({**GOOD, "STOCK_TRACKER_API_WORKERS": "2"}).api_workers == 2


def test_development_reads_dotenv(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("STOCK_TRACKER_API_PORT=9123\nSTOCK_TRACKER_LOG_FORMAT=console\n")
    s = load_settings({"STOCK_TRACKER_ENV": "development"}, dotenv_path=env_file)
    assert s.api_port == 9123 and s.log_format == "console"
    # Production never reads .env.
    assert load_settings(GOOD, dotenv_path=env_file).api_port == 8000


@pytest.mark.parametrize("command", ["api", "worker"])
def test_cli_refuses_to_start_production_without_secrets(command):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCK_TRACKER_")}
    env.update(
        {
            "STOCK_TRACKER_ENV": "production",
            "STOCK_TRACKER_DATABASE_URL": "postgresql://a@b/c",
            "STOCK_TRACKER_REDIS_URL": "redis://x",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "app", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "STOCK_TRACKER_JWT_SECRET" in proc.stderr and "STOCK_TRACKER_ENCRYPTION_KEYS" in proc.stderr
