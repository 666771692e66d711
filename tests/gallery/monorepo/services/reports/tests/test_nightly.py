from reports.nightly import title


def test_report_titles() -> None:
    assert title("nightly-sales") == "Nightly Sales"
