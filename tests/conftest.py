"""Fixtures shared by the unit tests (tests/unit/) and the system tests (tests/system/, whose own
conftest.py adds the shrunken pipeline); the helpers they build on live in testkit/."""
