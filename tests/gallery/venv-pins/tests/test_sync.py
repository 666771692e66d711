from legacy.sync import batch_name


def test_batch_names_are_padded() -> None:
    assert batch_name(7) == "batch-007"
