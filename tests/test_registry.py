import pytest

from laser_gs.backends import registry
from laser_gs.errors import BackendError


def test_unknown_name_raises_backend_error_with_names():
    with pytest.raises(BackendError, match="unknown backend 'nope'; available:"):
        registry.get_backend("nope")


def test_register_rejects_non_backends_and_name_clashes():
    with pytest.raises(TypeError):
        registry.register_backend("x-test")(object)

    class A(registry.Backend):
        fit = render = save = export = lambda *a, **k: None
        load = classmethod(lambda cls, *a, **k: cls())

    class B(A):
        pass

    try:
        registry.register_backend("a-test")(A)
        assert registry.get_backend("a-test") is A and A.name == "a-test"
        assert "a-test" in registry.list_backends()
        with pytest.raises(ValueError, match="already registered"):
            registry.register_backend("a-test")(B)
    finally:
        registry._REGISTRY.pop("a-test", None)
