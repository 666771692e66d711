TASK_QUEUE = "invoices"
