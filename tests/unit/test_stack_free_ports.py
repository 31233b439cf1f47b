"""free_ports: distinct, bindable ports that no outgoing connection can take."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from otel_ml.cli.stack import ports as ports_module
from otel_ml.cli.stack.errors import StackError
from otel_ml.cli.stack.ports import Ports, free_ports


def _ephemeral_start() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    got = free_ports(40)
    assert len(set(got)) == 40
    assert all(10_000 <= port < _ephemeral_start() for port in got)
    held = []
    try:
        for port in got:
            sock = socket.socket()
            held.append(sock)
            sock.bind(("127.0.0.1", port))  # raises if the port was not free
    finally:
        for sock in held:
            sock.close()


def test_headroom_leaves_room_for_ports_moved_by_a_step() -> None:
    for port in free_ports(20, headroom=30):
        assert port + 30 < _ephemeral_start()


def test_a_port_held_by_a_listener_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    # Confine the search to two ports, one of them taken: only the other comes back.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(ports_module, "_LOWEST_FREE", busy)
        monkeypatch.setattr(ports_module, "_ephemeral_start", lambda: busy + 3)
        # busy..busy+1 is the search range: busy is taken, busy+1 may be free.
        try:
            got = free_ports(1)
        except StackError as exc:
            assert "0 of 1 ports free" in str(exc)
        else:
            assert got == [busy + 1]
        with pytest.raises(StackError, match=r"only [01] of 2 ports free"):
            free_ports(2)


def test_ports_free_fills_every_field_with_a_distinct_port() -> None:
    values = dataclasses.astuple(Ports.free())
    assert len(set(values)) == len(dataclasses.fields(Ports))
    assert all(port < _ephemeral_start() for port in values)
