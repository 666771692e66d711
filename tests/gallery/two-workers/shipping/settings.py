from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_host: str = "localhost"
    database_port: int = 5432
    database_user: str = "shipping"
    database_password: SecretStr = SecretStr("")
    database_name: str = "shipping"
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    email_webhook_url: str = ""  # the mail provider's HTTP API

    def dsn_parts(self) -> dict[str, object]:
        return {
            "host": self.database_host,
            "port": self.database_port,
            "user": self.database_user,
            "password": self.database_password.get_secret_value(),
            "dbname": self.database_name,
        }
