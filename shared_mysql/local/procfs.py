"""What a running server really does, read from /proc without logging in: its listening TCP and Unix sockets,
and whether a process is alive."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path


def _unix_socket_reachable(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(str(path))
            return True
    except OSError:
        return False


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def listening_tcp(pid: int) -> list[str]:
    """The TCP addresses `pid` listens on: its socket inodes (/proc/<pid>/fd) matched against LISTEN entries of
    /proc/<pid>/net/tcp and tcp6. Needs no login; an empty list when /proc cannot be read."""
    inodes = _socket_inodes(pid)
    found = []
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 9 and f[3] == "0A" and f[9] in inodes:  # 0A: TCP_LISTEN
                found.append(_proc_address(f[1]))
    return sorted(set(found))


def listening_unix(pid: int) -> list[str]:
    """The paths of the Unix sockets `pid` listens on (/proc/<pid>/net/unix), still listed after an unlink."""
    inodes = _socket_inodes(pid)
    try:
        rows = Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]
    except OSError:
        return []
    # Num RefCount Protocol Flags Type St Inode Path; flag 0x10000 (__SO_ACCEPTCON) marks a listener.
    return sorted({f[7] for f in (r.split() for r in rows)
                   if len(f) > 7 and f[6] in inodes and int(f[3], 16) & 0x10000 and f[7].startswith("/")})


def _proc_address(field: str) -> str:
    """/proc/net/tcp's `0100007F:33F2` -> `127.0.0.1:13298`; tcp6's four little-endian words -> `[::1]:port`."""
    hexaddr, hexport = field.split(":")
    raw = bytes.fromhex(hexaddr)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    addr = ipaddress.ip_address(raw)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    port = int(hexport, 16)
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"


def _alive(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    if stat_line.rsplit(")", 1)[1].split()[0] == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True
