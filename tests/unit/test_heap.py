"""share_one_arena: glibc's arena limit set once, before the command's worker threads."""

from __future__ import annotations

import argparse
import ctypes
import sys
from typing import Any

import pytest

from mdmr_provision import heap


class FakeLibc:
    def __init__(self, answer: int) -> None:
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

        def mallopt(param: int, value: int) -> int:
            self.calls.append((param, value))
            return self.answer

        self.mallopt: Any = mallopt


@pytest.fixture
def fake_libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    libc = FakeLibc(answer=1)
    monkeypatch.setattr(ctypes, "CDLL", lambda _name: libc)
    monkeypatch.setattr(heap, "_done", False)
    monkeypatch.setattr(sys, "platform", "linux")
    return libc


def test_one_arena_is_asked_for_once(fake_libc: FakeLibc) -> None:
    assert heap.share_one_arena() is True
    assert heap.share_one_arena() is True
    assert fake_libc.calls == [(-8, 1)]  # M_ARENA_MAX = 1, not set again


def test_a_libc_that_ignores_it_is_reported(fake_libc: FakeLibc) -> None:
    fake_libc.answer = 0  # musl's mallopt: a stub
    assert heap.share_one_arena() is False


def test_no_mallopt_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_done", False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda _name: object())
    assert heap.share_one_arena() is False


def test_other_systems_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_done", False)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert heap.share_one_arena() is False


def test_apply_asks_before_it_opens_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    from mdmr_provision.cli import apply

    order: list[str] = []

    def arena() -> bool:
        order.append("arena")
        return True

    monkeypatch.setattr(apply, "share_one_arena", arena)

    def stop(_args: object) -> None:
        order.append("session")
        raise RuntimeError("stop here")

    monkeypatch.setattr(apply, "open_session", stop)
    args = argparse.Namespace(plan_file=None, env=None, target=None, check=False,
                            detailed_exitcode=False, json=False, auto_approve=True)
    with pytest.raises(RuntimeError, match="stop here"):
        apply.run(args)
    assert order == ["arena", "session"]
