"""The project's errors: one line a user can act on, and the exit code the CLI uses for it."""


class SharedMySQLError(Exception):
    """Base error: `str(err)` is one actionable line; `exit_code` follows the CLI contract."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        """Always one printable line: newlines become spaces; any other control, format or separator character
        (CR, ESC, U+2028, a bidi override), which can only come from data such as a name read from the server,
        is shown escaped, so no message can forge or hide a line in a terminal or a log."""
        text = " ".join(self.message.split("\n"))
        if text.isprintable():
            return text
        return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class ConfigError(SharedMySQLError):
    """The config file is missing, unreadable or invalid."""


class UsageError(SharedMySQLError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2


class ServerError(SharedMySQLError):
    """The database server is unreachable, refused us, or failed a statement."""


class LocalServerError(SharedMySQLError):
    """The embedded server could not be found, initialised, started or stopped."""


class SecretStoreError(SharedMySQLError):
    """The secret store cannot be read or written (missing or wrong key, corrupt file, missing secret)."""


class DestructiveChangeError(SharedMySQLError):
    """A plan holds destructive actions and they were not explicitly allowed."""


class StateError(SharedMySQLError):
    """A file in the state directory cannot be read or written (full disk, read-only or unwritable directory)."""


class ExportsError(SharedMySQLError):
    """Exports cannot be published as asked (a value that is unsafe in the exported files)."""


class FindingsFailed(SharedMySQLError):
    """A check (audit, infra check) found failures at or above the threshold: exit 3."""

    exit_code = 3
