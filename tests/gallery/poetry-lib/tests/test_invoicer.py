from invoicer.billing import invoice_number


def test_invoice_numbers_are_zero_padded() -> None:
    assert invoice_number("acme", 41) == "ACME-00042"
