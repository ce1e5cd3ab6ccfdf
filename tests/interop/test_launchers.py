"""The sidecar launchers: loopback-only listening and a clean stop on SIGTERM."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from tests.peer import launch

pytestmark = pytest.mark.interop

_TCP_LISTEN_STATE = "0A"


def _decode_proc_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # /proc/net/tcp* stores addresses as 32-bit words in host (little-endian) order.
    raw = bytes.fromhex(hex_address)
    words = [raw[i:i + 4][::-1] for i in range(0, len(raw), 4)]
    packed = b"".join(words)
    if len(packed) == 4:
        return ipaddress.IPv4Address(packed)
    address = ipaddress.IPv6Address(packed)
    return address.ipv4_mapped or address


def listening_addresses(port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Return the local addresses with a listening TCP socket on ``port``, read from /proc/net."""
    found = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local_address, local_port = fields[1].split(":")
            if int(local_port, 16) == port and fields[3] == _TCP_LISTEN_STATE:
                found.append(_decode_proc_address(local_address))
    return found


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from Linux /proc/net")
@pytest.mark.parametrize("kind", ["official", "durable"])
def test_sidecar_listens_on_loopback_only(kind: str, tmp_path: Path) -> None:
    if kind == "official":
        process, address = launch.start_official_sidecar()
    else:
        process, address = launch.start_durable_sidecar_process(tmp_path / "listen.db")
    try:
        assert address.startswith("127.0.0.1:")
        addresses = listening_addresses(port_of(address))
        assert addresses, f"nothing listens on port {port_of(address)}"
        assert all(a.is_loopback for a in addresses), f"listening on {addresses}"
    finally:
        status = launch.stop(process)
    assert status == 0, f"{kind} sidecar exited with status {status} on SIGTERM\n{process.output_tail()}"
