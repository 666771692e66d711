"""Checks on the run's live environment, beside the data checks: the fixtures, attached."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.staging_check


def test_a_green_pipeline_notified_nobody(captured):
    assert captured.names == ["slack"]
    assert captured.count("slack") == 0, captured.requests("slack")


def test_the_worker_loaded_its_secrets_from_the_dotenv_file(staging_settings, staging_worker):
    assert staging_worker.task_queue == "everflow"
    assert staging_settings.source("db_password") == "dotenv"
    assert staging_settings["task_queue"] == staging_worker.task_queue
