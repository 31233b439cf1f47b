"""free_ports: distinct, bindable ports that no outgoing connection can take."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from otel_ml.cli.stack import ports as ports_module
from otel_ml.cli.stack.errors import StackError
from otel_ml.cli.stack.ports import Ports, free_ports


def _ephemeral() -> tuple[int, int]:
    first, last = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2]
    return int(first), int(last)


def _outside(port: int, headroom: int = 0) -> bool:
    first, last = _ephemeral()
    return port + headroom < first or port > last


def test_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    got = free_ports(40)
    assert len(set(got)) == 40
    if len(ports_module._outside_ephemeral(0)) >= 4 * 40:  # else the kernel picks (below)
        assert all(port >= 10_000 and _outside(port) for port in got)
    held = []
    try:
        for port in got:
            sock = socket.socket()
            held.append(sock)
            sock.bind(("127.0.0.1", port))  # raises if the port was not free
    finally:
        for sock in held:
            sock.close()


def test_headroom_leaves_room_for_ports_moved_by_a_step(monkeypatch: pytest.MonkeyPatch) -> None:
    # Linux's default range, whatever this machine's: the ports are below it.
    monkeypatch.setattr(ports_module, "_ephemeral_range", lambda: (32_768, 60_999))
    for port in free_ports(20, headroom=30):
        assert port >= 10_000 and port + 30 < 32_768


def test_a_port_held_by_a_listener_is_never_returned() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        # Of busy and busy + 1, only busy + 1 can come back (if nothing else holds it).
        try:
            assert ports_module._bindable(range(busy, busy + 2), 1) == [busy + 1]
        except StackError as exc:
            assert f"only 0 of 1 ports free in {busy}..{busy + 1}" == str(exc)
        with pytest.raises(StackError, match=r"only [01] of 2 ports free"):
            ports_module._bindable(range(busy, busy + 2), 2)


def test_the_larger_side_of_the_ephemeral_range_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports_module, "_ephemeral_range", lambda: (32_768, 60_999))
    assert ports_module._outside_ephemeral(30) == range(10_000, 32_738)
    monkeypatch.setattr(ports_module, "_ephemeral_range", lambda: (12_000, 20_000))
    assert ports_module._outside_ephemeral(0) == range(20_001, 65_536)


def test_without_room_outside_the_range_the_kernel_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports_module, "_ephemeral_range", lambda: (1024, 65_535))
    got = free_ports(5)
    assert len(set(got)) == 5 and all(1024 <= port <= 65_535 for port in got)


def test_ports_free_fills_every_field_with_a_distinct_port() -> None:
    values = dataclasses.astuple(Ports.free())
    assert len(set(values)) == len(dataclasses.fields(Ports))
    if len(ports_module._outside_ephemeral(0)) >= 4 * len(values):
        assert all(_outside(port) for port in values)
