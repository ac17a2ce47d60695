import pytest

from marketplace.core.registry import Registry


def test_a_name_is_claimed_once_unless_replacing_is_meant():
    registry = Registry("widget")
    registry.add("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        registry.add("a", 2)
    registry.add("a", 3, replace=True)
    assert registry.get("a") == 3


def test_an_unknown_name_says_what_is_known():
    registry = Registry("widget")
    registry.add("a", 1)
    registry.add("b", 2)
    with pytest.raises(LookupError, match=r"unknown widget 'c' \(registered: a, b\)"):
        registry.get("c")


def test_entries_keep_the_order_they_were_added_in():
    registry = Registry("widget")
    for name in ("z", "a", "m"):
        registry.add(name, name.upper())
    assert registry.names() == ["z", "a", "m"]
    assert list(registry) == ["Z", "A", "M"]
    registry.remove("a")
    assert "a" not in registry and len(registry) == 2
