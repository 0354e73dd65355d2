"""How payload values reach a handler."""

from baton_client.worker import _plain


def test_whole_numbers_arrive_as_ints_and_fractions_stay_floats():
    decoded = {"fail": 2.0, "rate": 0.7, "items": [1.0, {"n": 3.0}], "name": "x"}
    assert _plain(decoded) == {"fail": 2, "rate": 0.7, "items": [1, {"n": 3}], "name": "x"}
    assert isinstance(_plain(2.0), int)
    assert isinstance(_plain(0.5), float)
