"""Configuration, loaded from the environment and the app's `.env` file.

Production (Fly.io) and staging both deliver these values as a `.env` file in the
worker's working directory, so `env_file` below is load-bearing: without it every
field silently falls back to its default.
"""

from __future__ import annotations

from functools import cache
from urllib.parse import quote

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    db_host: str = "localhost"
    db_port: int = 5432
    db_user: str = "everflow"
    db_password: SecretStr = SecretStr("")
    db_name: str = "everflow"

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "everflow"

    # Where failed runs are announced (a Slack incoming webhook). Empty: notify is a no-op.
    slack_webhook_url: str = ""

    @property
    def database_url(self) -> str:
        """`postgresql://` DSN for psycopg. Generated passwords contain @ : / % # and
        spaces, which mean something in a URL, so user and password are percent-escaped."""
        user = quote(self.db_user, safe="")
        password = quote(self.db_password.get_secret_value(), safe="")
        return (
            f"postgresql://{user}:{password}@{self.db_host}:{self.db_port}"
            f"/{quote(self.db_name, safe='')}"
        )

    def describe_db(self) -> str:
        """Where the database is, for logs and error messages (never the password)."""
        return f"{self.db_user}@{self.db_host}:{self.db_port}/{self.db_name}"


@cache
def get_settings() -> Settings:
    return Settings()
