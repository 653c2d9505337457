"""Encrypted local secret store: one Fernet-encrypted JSON document, written atomically.

The key lives apart from the data: `SHARED_MYSQL_SECRETS_KEY` (a Fernet key) when set, otherwise a key file
created with mode 0600. Writes go to a temp file in the same directory, are fsynced, then renamed over the old
file, so a crash leaves either the old or the new document, never a torn one. The key file is created once,
exclusively (`link`, never `rename`): two first writes at once agree on one key and an existing key is never
replaced. The document itself is read-modify-write: callers serialise writers (the CLI holds a lock file).
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path

from ..errors import SecretStoreError, StateError
from .document import FORMAT, DocumentSecretStore, document_problem

KEY_ENV = "SHARED_MYSQL_SECRETS_KEY"

# A Fernet token: version 0x80 | timestamp (8) | IV (16) | AES-CBC ciphertext (16n, n >= 1) | HMAC-SHA256 (32).
_TOKEN_OVERHEAD = 1 + 8 + 16 + 32
_TOKEN_B64 = re.compile(rb"[A-Za-z0-9_-]*={0,2}")


# -- files in the state dir ---------------------------------------------------------------------------------
def private_dirs(path: Path) -> None:
    """`mkdir -p path` with 0700 on every directory it creates: Path.mkdir(parents=True, mode=...) gives the
    mode to the last one only, and `.shared-mysql/` above the state dir was left 0755 by the umask."""
    path = Path(path)
    missing = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass


def write_private(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Atomically replace `path` with `data`, mode 0600; fsynced (file and directory) unless `durable=False`,
    for derived files that the next run regenerates anyway. Fails with one StateError line, the old file intact."""
    path = Path(path)
    replaced = False
    try:
        private_dirs(path.parent)
        tmp = _write_temp(path, data, durable)
        try:
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        replaced = True
        if durable:
            _fsync_dir(path.parent)
    except OSError as exc:
        raise StateError(_write_failure(path, exc, replaced)) from exc


def read_json_dict(path: Path) -> dict:
    """A small JSON state file (journals, records of what a command did): {} when it is missing or unreadable.
    Read with read_regular: never through a symlink, never blocking on a planted FIFO."""
    import json

    try:
        raw = read_regular(path)
        d = json.loads(raw) if raw is not None else {}
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def write_json(path: Path, data: dict) -> None:
    """The counterpart of read_json_dict: atomically, 0600, in a private directory."""
    import json

    write_private(path, json.dumps(data, indent=1, sort_keys=True).encode())


def read_regular(path: Path) -> bytes | None:
    """The bytes of a regular file, or None when it does not exist; never blocks on a FIFO or a device.
    Anything else raises OSError (strerror "not a regular file" for a FIFO, socket, device or directory)."""
    try:
        # O_NOFOLLOW: a state file that is a symlink is refused (ELOOP), never read through.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a symbolic link, not a regular file", str(path)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        # os.read straight off the descriptor: no buffered file object (10,000 .env checks per plan).
        chunks = [os.read(fd, st.st_size + 1)]
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 20))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _write_temp(path: Path, data: bytes, durable: bool) -> str:
    """`data` in a new 0600 temp file beside `path` (fsynced when durable); removed again on any failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)  # a deferred write error (NFS, quota) can surface here
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _fsync_dir(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


_WRITE_HINTS = {
    errno.ENOSPC: "free space and re-run",
    errno.EDQUOT: "free space (disk quota exceeded) and re-run",
    errno.EROFS: "the file system is read-only; make it writable (or move the state directory) and re-run",
    errno.EISDIR: "something else is in the way at that path; move it away and re-run",
    errno.ENOTDIR: "a parent of that path is not a directory; move it away and re-run",
}


def _write_failure(path: Path, exc: OSError, replaced: bool = False) -> str:
    """One line: which file, the system's reason, and what to do."""
    reason = exc.strerror or type(exc).__name__
    if exc.filename and Path(exc.filename) in (path.parent, *path.parent.parents):
        reason += f" ({exc.filename})"  # the directory, not the file itself, is the problem
    if exc.errno in (errno.EACCES, errno.EPERM):
        hint = f"make {path.parent} writable by this user and re-run"
    else:
        hint = _WRITE_HINTS.get(exc.errno, "fix that and re-run")
    if replaced:
        return (f"wrote {path} but could not sync its directory: {reason}; the new file may not survive a power "
                f"loss; {hint}")
    return f"cannot write {path}: {reason}; {hint} (the file was not changed)"


# -- the store ----------------------------------------------------------------------------------------------
class FileSecretStore(DocumentSecretStore):
    _raw: bytes | None = None  # the file's bytes as last read or written
    _raw_candidate: bytes | None = None

    def __init__(self, path: Path, key_path: Path):
        super().__init__()
        self.path = Path(path)
        self.key_path = Path(key_path)
        self._fernet = None
        self._key_source = ""

    def _cipher(self, create: bool = False):
        if self._fernet is None:
            self._fernet = self._load_key(create)
        return self._fernet

    def _load_key(self, create: bool):
        key = os.environ.get(KEY_ENV)
        if key:
            self._key_source = f"${KEY_ENV}"
            if os.path.exists(self.key_path):
                self._key_source += f", which overrides {self.key_path}"
            return self._fernet_from(key, f"${KEY_ENV}", f"set ${KEY_ENV} to the key the store was written with")
        self._key_source = str(self.key_path)
        # The store is checked before the key: a key is always in place before the first store is written, so a
        # store seen here with no key after it means the key is really gone (not that someone is creating it).
        store_exists = self._store_exists()
        key = self._read_key_file()
        if key is None:
            if store_exists:
                raise SecretStoreError(
                    f"{self.path}: the store exists but its key {self.key_path} is missing; restore the key "
                    f"file or set {KEY_ENV}"
                )
            if not create:
                raise SecretStoreError(f"{self.key_path}: no key yet; nothing has been stored")
            key = self._create_key()
            if key is None:  # another process created it first: use its key, never replace it
                key = self._read_key_file()
                if key is None:
                    raise SecretStoreError(f"{self.key_path}: the key file vanished while it was being created; "
                                           "re-run")
        fix = f"restore the key file from a backup (or set {KEY_ENV})"
        if not store_exists:
            fix += "; there is no store yet, so if nothing was ever stored with it, remove it and re-run"
        return self._fernet_from(key, str(self.key_path), fix)

    @staticmethod
    def _fernet_from(key: str | bytes, source: str, fix: str):
        from cryptography.fernet import Fernet

        if not key.strip():
            raise SecretStoreError(f"{source}: the key is empty; {fix}")
        try:
            return Fernet(key)
        except (ValueError, TypeError, binascii.Error):
            raise SecretStoreError(
                f"{source}: not a valid Fernet key (32 url-safe base64-encoded bytes); {fix}"
            ) from None

    def _read_key_file(self) -> bytes | None:
        try:
            data = read_regular(self.key_path)
            if data is None:
                return None
            st = os.stat(self.key_path)
            mode = stat.S_IMODE(st.st_mode)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretStoreError(f"cannot read the key file {self.key_path}: {exc.strerror}; fix its permissions "
                                   "or restore it from a backup") from exc
        if mode & 0o077:
            raise SecretStoreError(
                f"{self.key_path}: key file is readable by others (mode {mode:o}); run chmod 600 on it"
            )
        if st.st_uid != os.geteuid():  # a key someone else planted would be trusted with every secret
            raise SecretStoreError(f"{self.key_path}: the key file belongs to uid {st.st_uid}, not to this user "
                                   f"(uid {os.geteuid()}); run shared-mysql as its owner")
        return data.strip()

    def _create_key(self) -> bytes | None:
        """Create the key file exclusively: a fully written, fsynced temp file hard-linked into place. Returns the
        new key, or None when another process linked its key first (ours is discarded)."""
        from cryptography.fernet import Fernet

        key = Fernet.generate_key()
        try:
            private_dirs(self.key_path.parent)
            tmp = _write_temp(self.key_path, key + b"\n", durable=True)
            try:
                os.link(tmp, self.key_path)  # EEXIST if someone else won; rename would replace their key
            except FileExistsError:
                return None
            finally:
                _unlink_quietly(tmp)
            _fsync_dir(self.key_path.parent)
        except OSError as exc:
            raise StateError(_write_failure(self.key_path, exc)) from exc
        return key

    # -- the document -------------------------------------------------------------------------------------
    def _store_exists(self) -> bool:
        try:
            os.stat(self.path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise SecretStoreError(f"cannot read {self.path}: {exc.strerror}; fix its permissions") from exc
        return True

    def _read_store(self) -> bytes | None:
        try:
            return read_regular(self.path)
        except OSError as exc:
            raise SecretStoreError(f"cannot read {self.path}: {exc.strerror}; fix its permissions or restore it "
                                   "from a backup") from exc

    def reload(self) -> None:
        """Forget the cached document unless the file holds exactly the bytes read or written last (Fernet tokens
        carry a random IV, so equal bytes mean the same write). Comparing ~6 MB of bytes costs ~1 ms; decrypting
        and parsing them again ~0.2 s at 10,000 tenants. (File metadata is not enough: ext4 reuses a freed inode
        at once, and a same-size rewrite within one timestamp tick would look unchanged.)"""
        if self._doc is not None and self._raw is not None:
            try:
                if read_regular(self.path) == self._raw:
                    return
            except OSError:
                pass
        self._doc, self._raw = None, None

    def _read(self) -> dict:
        return self._decrypt()

    def _decrypt(self) -> dict:
        from cryptography.fernet import InvalidToken

        raw = self._read_store()
        if raw is None:
            return {"format": FORMAT, "secrets": {}}  # the key is created on the first write
        self._raw_candidate = raw
        corrupt = (f"{self.path}: the secret store is truncated or corrupt ({len(raw)} bytes); "
                   "restore it from a backup")
        token = raw.strip()
        if not token:
            raise SecretStoreError(corrupt)
        cipher = self._cipher()
        try:
            plain = cipher.decrypt(token)
        except InvalidToken:
            # Told apart only on failure (the shape check costs ~50 ms on a 6 MB store): not even shaped like a
            # token is corruption; shaped like one, the HMAC failed, so another key (or a same-shape edit).
            if not _is_fernet_token(token):
                raise SecretStoreError(corrupt) from None
            raise SecretStoreError(
                f"cannot decrypt {self.path} with the configured key ({self._key_source}): wrong key, or the file "
                "was modified; use the key it was written with, or restore the store from a backup"
            ) from None
        try:
            doc = json.loads(plain)
        except (ValueError, RecursionError):  # includes UnicodeDecodeError
            raise SecretStoreError(corrupt) from None
        problem = document_problem(doc)
        if problem:
            raise SecretStoreError(f"{self.path}: the secret store is corrupt (it decrypts, but is {problem}); "
                                   "restore it from a backup")
        self._raw = self._raw_candidate
        return doc

    def _write(self, doc: dict) -> None:
        self._raw = None  # a failed write leaves the in-memory document ahead of the file: re-read next time
        token = self._cipher(create=True).encrypt(json.dumps(doc, separators=(",", ":")).encode())
        write_private(self.path, token)
        self._raw = token


def _is_fernet_token(token: bytes) -> bool:
    """Whether `token` is shaped like a Fernet token, so that a failed HMAC can only mean another key or a
    same-shape modification, and anything else (empty, cut short, not base64) is reported as corruption."""
    if not token or len(token) % 4 or not _TOKEN_B64.fullmatch(token):
        return False
    try:
        data = base64.b64decode(token, altchars=b"-_", validate=True)
    except binascii.Error:
        return False
    n = len(data) - _TOKEN_OVERHEAD
    return n >= 16 and n % 16 == 0 and data[0] == 0x80
