"""SHOP_DATABASE_URL, SHOP_TEMPORAL__ADDRESS, ...: one DSN, nested models, from `.env`."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TemporalSettings(BaseModel):
    address: str = "localhost:7233"
    namespace: str = "default"


class AlertSettings(BaseModel):
    webhook_url: str = ""
    channel: str = "#shop-alerts"


class ShopSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_prefix="SHOP_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    database_url: str = "postgresql://localhost/shop"
    temporal: TemporalSettings = TemporalSettings()
    alerts: AlertSettings = AlertSettings()
    region: str = Field("eu-west", validation_alias="DEPLOY_REGION")
    partner_api_key: SecretStr | None = None  # only the partner sync uses it
