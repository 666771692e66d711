from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    db_host: str = "localhost"
    db_port: int = 5432
    db_user: str = "legacy"
    db_password: SecretStr = SecretStr("")
    db_name: str = "legacy"
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    sync_queue: str = "legacy-sync"
