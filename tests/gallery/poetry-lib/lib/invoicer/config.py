"""INVOICER_* variables, from `.env` in production too."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class InvoicerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_prefix="INVOICER_")

    postgres_host: str = "localhost"
    postgres_port: int = 5432
    postgres_user: str = "invoicer"
    postgres_password: SecretStr = SecretStr("")
    postgres_db: str = "invoicer"
    temporal_host: str = "localhost:7233"
    temporal_namespace: str = "default"
