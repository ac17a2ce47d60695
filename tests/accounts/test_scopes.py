import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.accounts.scopes import InvalidScope, allows_model, normalise_scopes

MODEL = {"owner": "acme", "name": "sentiment", "version": "1.2.3"}


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        ("algo://*", True),
        ("algo://acme/*", True),
        ("algo://acme/sentiment", True),
        ("algo://acme/sentiment/*", True),
        ("algo://acme/sentiment/1.*", True),
        ("algo://acme/sentiment/1.2.*", True),
        ("algo://acme/sentiment/1.2.3", True),
        ("algo://*/sentiment", True),
        ("algo://acme/sentiment/2.*", False),
        ("algo://acme/sentiment/1.2.4", False),
        ("algo://acme/other/*", False),
        ("algo://acmex/*", False),
        ("algo://acm/*", False),
        ("algo://other/*", False),
        ("algo://acme/senti", False),
        ("catalog:write", False),
    ],
)
def test_patterns(scope, allowed):
    assert allows_model(normalise_scopes([scope]), **MODEL) is allowed


def test_no_scope_allows_nothing():
    assert not allows_model([], **MODEL)


@pytest.mark.parametrize(
    "scope",
    [
        "algo://",
        "algo://acme/../*",
        "algo://acme/%2F/*",
        "algo://acme/sentiment/1/2",
        "algo://acme*",
        "algo://[a-z]/*",
        "algo://acme/?",
        "model:write",
        "",
        "algo://acme//",
        "ALGO:// acme/*",
    ],
)
def test_malformed_scopes_are_refused(scope):
    with pytest.raises(InvalidScope):
        normalise_scopes([scope])


def test_case_is_normalised_not_bypassed():
    assert normalise_scopes(["ALGO://ACME/*"]) == ["algo://acme/*"]
    assert not allows_model(["algo://acme/*"], owner="ACME", name="sentiment", version="1.0.0")


@given(
    owner=st.from_regex(r"[a-z][a-z0-9-]{1,10}", fullmatch=True),
    name=st.from_regex(r"[a-z][a-z0-9_-]{1,10}", fullmatch=True),
)
def test_owner_scope_covers_exactly_that_owner(owner, name):
    scopes = normalise_scopes([f"algo://{owner}/*"])
    assert allows_model(scopes, owner=owner, name=name, version="0.1.0")
    assert not allows_model(scopes, owner=owner + "x", name=name, version="0.1.0")
