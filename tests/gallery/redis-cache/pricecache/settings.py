"""The app's settings, as production delivers them: a .env file beside the worker."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    db_host: str = "localhost"
    db_port: int = 5432
    db_user: str = "pricecache"
    db_password: SecretStr = SecretStr("")
    db_name: str = "pricecache"
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    redis_url: str = "redis://localhost:6379/0"

    def conninfo(self) -> dict[str, object]:
        return {
            "host": self.db_host,
            "port": self.db_port,
            "user": self.db_user,
            "password": self.db_password.get_secret_value(),
            "dbname": self.db_name,
        }
