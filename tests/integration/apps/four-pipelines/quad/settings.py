from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
