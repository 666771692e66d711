from shipping.emails import message


def test_subject_names_the_order() -> None:
    assert message(7) == {"subject": "Order 7 shipped"}
