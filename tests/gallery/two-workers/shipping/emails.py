from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

from temporalio import activity, workflow

from shipping.settings import Settings


def message(order_id: int) -> dict[str, str]:
    return {"subject": f"Order {order_id} shipped"}


@activity.defn
def send_email(order_id: int) -> None:
    url = Settings().email_webhook_url
    body = json.dumps(message(order_id)).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


@workflow.defn(sandboxed=False)
class SendShippedEmail:
    @workflow.run
    async def run(self, order_id: int) -> None:
        await workflow.execute_activity(
            send_email, order_id, start_to_close_timeout=timedelta(seconds=30)
        )
