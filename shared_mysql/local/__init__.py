"""The embedded server the `local` target runs: binary discovery, datadir, TLS, config, lifecycle."""

from .server import LocalServer, find_server_binary

__all__ = ["LocalServer", "find_server_binary"]
