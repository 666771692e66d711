"""The corpus cases of settings judged by delivery (issue 12): the edits that make them.

Each breaks how `everflow.settings` reads what staging delivers, in a way a name-based
check cannot see; `regenerate.py` registers them beside its own cases.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.corpus import CorpusError

SETTINGS = "everflow/settings.py"
_DB_FIELDS = (
    '    db_host: str = "localhost"\n'
    "    db_port: int = 5432\n"
    '    db_user: str = "everflow"\n'
    '    db_password: SecretStr = SecretStr("")\n'
    '    db_name: str = "everflow"\n'
)
_DB_ENV = (
    'DB_HOST = "{postgres.host}"\n'
    'DB_PORT = "{postgres.port}"\n'
    'DB_USER = "{postgres.user}"\n'
    'DB_PASSWORD = "{postgres.password}"\n'
    'DB_NAME = "{postgres.database}"\n'
)


def edit(app: Path, rel: str, old: str, new: str) -> None:
    path = app / rel
    text = path.read_text()
    if text.count(old) != 1:
        raise CorpusError(f"{rel}: expected exactly one {old!r}, found {text.count(old)}")
    path.write_text(text.replace(old, new))


def dsn_env_file_removed(app: Path) -> None:
    """The app reads one DSN with a harmless-looking default, then loses env_file."""
    edit(app, SETTINGS, '        env_file=".env",\n', "")
    edit(app, SETTINGS, "from urllib.parse import quote\n", "from urllib.parse import urlsplit\n")
    edit(app, SETTINGS, "from pydantic import SecretStr\n", "")
    edit(
        app,
        SETTINGS,
        _DB_FIELDS,
        "    # One DSN, percent-escaped by whoever renders it (staging: {postgres.url}).\n"
        '    database_url: str = "postgresql://everflow@localhost:5432/everflow"\n',
    )
    text = (app / SETTINGS).read_text()
    start = text.index("    @property\n    def database_url(self) -> str:\n")
    end = text.index("    def describe_db(self) -> str:\n")
    edit(app, SETTINGS, text[start:end], "")
    edit(
        app,
        SETTINGS,
        '        return f"{self.db_user}@{self.db_host}:{self.db_port}/{self.db_name}"\n',
        "        url = urlsplit(self.database_url)\n"
        '        return f"{url.username}@{url.hostname}:{url.port}{url.path}"\n',
    )
    edit(
        app,
        "everflow/migrate.py",
        "    with psycopg.connect(\n"
        "        host=settings.db_host,\n"
        "        port=settings.db_port,\n"
        "        user=settings.db_user,\n"
        "        password=settings.db_password.get_secret_value(),\n"
        "        dbname=settings.db_name,\n"
        "        connect_timeout=10,\n"
        "    ) as conn:\n",
        "    with psycopg.connect(settings.database_url, connect_timeout=10) as conn:\n",
    )
    edit(app, "pyproject.toml", _DB_ENV, 'DATABASE_URL = "{postgres.url}"\n')


def env_prefix_mismatch(app: Path) -> None:
    """Settings moved under an EVERFLOW_ prefix; the deploy config still says DB_PASSWORD."""
    edit(
        app,
        SETTINGS,
        '        env_file=".env",\n',
        '        env_file=".env",\n        env_prefix="EVERFLOW_",\n',
    )


def nested_delimiter_mismatch(app: Path) -> None:
    """The database settings became a nested model, read as DB__HOST, DB__PASSWORD..."""
    edit(
        app,
        SETTINGS,
        "from pydantic import SecretStr\n",
        "from pydantic import BaseModel, SecretStr\n",
    )
    edit(
        app,
        SETTINGS,
        "class Settings(BaseSettings):\n",
        "class Database(BaseModel):\n"
        + _DB_FIELDS.replace("    db_", "    ")
        + "\n\nclass Settings(BaseSettings):\n",
    )
    edit(
        app,
        SETTINGS,
        '        extra="ignore",\n',
        '        extra="ignore",\n        env_nested_delimiter="__",\n',
    )
    edit(app, SETTINGS, _DB_FIELDS, "    db: Database = Database()\n")
    flat = "".join(
        f"    @property\n    def db_{name}(self) -> {kind}:\n        return self.db.{name}\n\n"
        for name, kind in (
            ("host", "str"),
            ("port", "int"),
            ("user", "str"),
            ("password", "SecretStr"),
            ("name", "str"),
        )
    )
    edit(
        app,
        SETTINGS,
        "    @property\n    def database_url(self) -> str:\n",
        "    # The rest of the app keeps its flat names.\n"
        + flat
        + "    @property\n    def database_url(self) -> str:\n",
    )


def alias_renamed(app: Path) -> None:
    """db_password now reads libpq's own variable names through a validation_alias."""
    edit(
        app,
        SETTINGS,
        "from pydantic import SecretStr\n",
        "from pydantic import AliasChoices, Field, SecretStr\n",
    )
    edit(
        app,
        SETTINGS,
        '    db_password: SecretStr = SecretStr("")\n',
        "    # The same variables psql and pg_dump read.\n"
        "    db_password: SecretStr = Field(\n"
        '        SecretStr(""), validation_alias=AliasChoices("PGPASSWORD", "POSTGRES_PASSWORD")\n'
        "    )\n",
    )


SETTINGS_CHANGES: dict[str, Callable[[Path], None]] = {
    "dsn-env-file-removed": dsn_env_file_removed,
    "env-prefix-mismatch": env_prefix_mismatch,
    "nested-delimiter-mismatch": nested_delimiter_mismatch,
    "alias-renamed": alias_renamed,
}
