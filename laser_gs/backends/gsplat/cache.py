"""A value computed from tensors, reused while none of them changed: the one place the gsplat backend's
camera-independent semantic outputs are cached and invalidated.

A tensor changes by being replaced (densification, loading, a new lifted feature table: another object) or in
place (an optimizer step, ``load_state_dict``, ``copy_``: its version counter moves). The cache keeps the
tensors it was computed from and their versions, so no code path has to remember to clear it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


class TensorKeyedCache(Generic[T]):
    """``get(tensors, compute)``: ``compute()`` once per state of ``tensors``; never cached under autograd (a
    training step needs the graph, and its parameters change every step anyway)."""

    def __init__(self) -> None:
        self._key: list[tuple[Tensor, int]] = []
        self._value: T | None = None

    def get(self, tensors: Iterable[Tensor], compute: Callable[[], T]) -> T:
        if torch.is_grad_enabled():
            return compute()
        tensors = list(tensors)
        # ``is``, not ids: the key holds the tensors, so a freed one's address cannot be reused by a new one
        fresh = (len(tensors) == len(self._key) and self._value is not None
                 and all(t is k and t._version == v for t, (k, v) in zip(tensors, self._key)))
        if not fresh:
            self._value = compute()
            self._key = [(t, t._version) for t in tensors]
        return self._value

    def clear(self) -> None:
        self._key, self._value = [], None
