import pytest

from marketplace.core.sealing import SealBroken, seal, unseal


def test_a_sealed_value_opens_only_for_its_purpose(settings):
    sealed = seal("refresh-token-value", purpose="oidc refresh token")
    assert "refresh-token-value" not in sealed
    assert unseal(sealed, purpose="oidc refresh token") == "refresh-token-value"
    with pytest.raises(SealBroken):
        unseal(sealed, purpose="something else")


def test_a_tampered_value_is_refused():
    sealed = seal("value", purpose="p")
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(SealBroken):
        unseal(tampered, purpose="p")


def test_values_sealed_under_a_previous_secret_key_still_open(settings):
    settings.SECRET_KEY = "the-old-key-" + "x" * 40
    sealed = seal("value", purpose="p")
    settings.SECRET_KEY = "the-new-key-" + "y" * 40
    with pytest.raises(SealBroken):
        unseal(sealed, purpose="p")
    settings.SECRET_KEY_FALLBACKS = ["the-old-key-" + "x" * 40]
    assert unseal(sealed, purpose="p") == "value"
