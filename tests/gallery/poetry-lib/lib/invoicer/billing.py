from __future__ import annotations

import psycopg
from temporalio import activity

from invoicer.config import InvoicerSettings


def invoice_number(customer: str, count: int) -> str:
    return f"{customer.upper()}-{count + 1:05d}"


@activity.defn
async def issue_invoice(customer: str) -> str:
    s = InvoicerSettings()
    async with await psycopg.AsyncConnection.connect(
        host=s.postgres_host,
        port=s.postgres_port,
        user=s.postgres_user,
        password=s.postgres_password.get_secret_value(),
        dbname=s.postgres_db,
    ) as conn:
        await conn.execute("create table if not exists invoices (number text primary key)")
        cur = await conn.execute("select count(*) from invoices")
        (count,) = await cur.fetchone() or (0,)
        number = invoice_number(customer, count)
        await conn.execute("insert into invoices values (%s)", (number,))
    return number
