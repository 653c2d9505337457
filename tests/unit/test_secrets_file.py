import base64
import errno
import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from shared_mysql.errors import SecretStoreError, StateError
from shared_mysql.secrets import PREVIOUS
from shared_mysql.secrets.file import KEY_ENV, FileSecretStore, write_private

VALUE = {"engine": "mariadb", "host": "127.0.0.1", "port": 1, "username": "u", "password": "S3cretPassw0rdXYZ",
         "dbname": "a_db"}


def store(tmp_path):
    return FileSecretStore(tmp_path / "secrets.enc", tmp_path / "keys" / "secrets.key")


def test_encrypted_at_rest_with_private_modes(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    s = store(tmp_path)
    s.put_pending({"a": (VALUE, {"tenant": "a"})})
    raw = (tmp_path / "secrets.enc").read_bytes()
    assert b"S3cretPassw0rdXYZ" not in raw and b"username" not in raw
    assert stat.S_IMODE((tmp_path / "secrets.enc").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys" / "secrets.key").stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_only_labelled_versions_are_kept(tmp_path):
    s = store(tmp_path)
    for pw in ("one", "two", "three"):
        s.put_pending({"a": ({**VALUE, "password": pw}, {})})
        s.promote(["a"])
    fresh = store(tmp_path)
    assert fresh.get("a", PREVIOUS)["password"] == "two"
    assert len(fresh._load()["secrets"]["a"]["versions"]) == 2


def test_key_from_environment(tmp_path, monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(KEY_ENV, key)
    s = store(tmp_path)
    s.put_pending({"a": (VALUE, {})})
    assert not (tmp_path / "keys" / "secrets.key").exists()
    assert Fernet(key.encode()).decrypt((tmp_path / "secrets.enc").read_bytes())


def test_wrong_or_missing_key_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    s = store(tmp_path)
    s.put_pending({"a": (VALUE, {})})
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    with pytest.raises(SecretStoreError, match="cannot decrypt"):
        store(tmp_path).get("a")
    monkeypatch.setenv(KEY_ENV, "not-a-key")
    with pytest.raises(SecretStoreError, match="not a valid Fernet key"):
        store(tmp_path).get("a")
    monkeypatch.delenv(KEY_ENV)
    (tmp_path / "keys" / "secrets.key").unlink()
    with pytest.raises(SecretStoreError, match="key .* is missing"):
        store(tmp_path).get("a")


def test_loose_key_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    s = store(tmp_path)
    s.put_pending({"a": (VALUE, {})})
    os.chmod(tmp_path / "keys" / "secrets.key", 0o644)
    with pytest.raises(SecretStoreError, match="chmod 600"):
        store(tmp_path).get("a")


def test_reading_an_empty_store_creates_no_key(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    s = store(tmp_path)
    assert s.get("a") is None and s.names() == {}
    assert not (tmp_path / "keys" / "secrets.key").exists()
    s.put_pending({"a": (VALUE, {})})
    assert (tmp_path / "keys" / "secrets.key").exists()


# -- key creation: two first writes at once ---------------------------------------------------------------
def test_a_first_write_that_loses_the_key_race_uses_the_winners_key(tmp_path, monkeypatch):
    """Regression: two first writes each generated a key; the second replaced the first and the store became
    undecryptable. Here B creates its key and writes while A is between "no key" and creating its own."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    a, b = store(tmp_path), store(tmp_path)
    real_generate = Fernet.generate_key
    raced = []

    def generate_while_b_wins():
        if not raced:
            raced.append(True)
            b.put_pending({"b": ({**VALUE, "password": "bb"}, {})})  # B: fresh key, store written
        return real_generate()

    monkeypatch.setattr(Fernet, "generate_key", staticmethod(generate_while_b_wins))
    key_file = tmp_path / "keys" / "secrets.key"
    a.put_pending({"a": (VALUE, {})})  # A read "no key" before B wrote it
    assert raced
    winner = key_file.read_bytes()
    assert store(tmp_path).get("a") == VALUE  # A encrypted with B's key, the one on disk
    b.promote(["b"])  # B still encrypts with the key it created: it must be the one on disk
    assert key_file.read_bytes() == winner
    assert json.loads(Fernet(winner.strip()).decrypt((tmp_path / "secrets.enc").read_bytes()))
    assert store(tmp_path).get("b")["password"] == "bb"  # (without a lock, B's write dropped A's secret)
    assert not [p for p in (tmp_path / "keys").iterdir() if p.name.endswith(".tmp")]


def test_an_existing_key_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    key_file = tmp_path / "keys" / "secrets.key"
    key_file.parent.mkdir()
    key = Fernet.generate_key()
    key_file.write_bytes(key + b"\n")
    key_file.chmod(0o600)
    store(tmp_path).put_pending({"a": (VALUE, {})})  # no store yet, but a key: use it
    assert key_file.read_bytes() == key + b"\n"
    assert Fernet(key).decrypt((tmp_path / "secrets.enc").read_bytes())


CHILD = r"""
import fcntl, sys
from pathlib import Path
from shared_mysql.secrets.file import FileSecretStore

state, name, lock = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
print("ready", flush=True)
sys.stdin.readline()  # everyone starts at once
s = FileSecretStore(state / "secrets.enc", state / "secrets.key")
fh = open(lock, "w") if lock != "-" else None
if fh:
    fcntl.flock(fh, fcntl.LOCK_EX)  # as the CLI does around a whole command
s.put_pending({name: ({"password": name}, {"tenant": name})})
probe = s._cipher().encrypt(b"probe")  # what this process encrypts with
if fh:
    fcntl.flock(fh, fcntl.LOCK_UN)
print(probe.decode(), flush=True)
"""


def _run_first_writes(state, n, lock):
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(state), f"s{i}", lock], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(n)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("\n")
        p.stdin.flush()
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err for _, err in results]
    return [out.strip() for out, _ in results]


def _one_key_decrypts_everything(state, probes):
    assert sorted(p.name for p in state.iterdir()) == ["secrets.enc", "secrets.key"]  # no temp files left
    key = Fernet((state / "secrets.key").read_bytes().strip())
    for probe in probes:
        assert key.decrypt(probe.encode()) == b"probe"  # every process used the key on disk
    return json.loads(key.decrypt((state / "secrets.enc").read_bytes()))["secrets"]


@pytest.mark.parametrize("n", [8])
def test_concurrent_first_writes_under_the_cli_lock_keep_every_secret(tmp_path, n):
    state = tmp_path / "state"
    probes = _run_first_writes(state, n, str(tmp_path / "apply.lock"))
    secrets = _one_key_decrypts_everything(state, probes)
    assert sorted(secrets) == sorted(f"s{i}" for i in range(n))
    s = FileSecretStore(state / "secrets.enc", state / "secrets.key")
    assert {name: v["password"] for name, v in s.get_all().items()} == {f"s{i}": f"s{i}" for i in range(n)}


def test_concurrent_first_writes_without_a_lock_never_lose_the_key(tmp_path):
    """Without the CLI's lock a read-modify-write may drop another process's secret (documented), but there is
    only ever one key, and the store always decrypts with it."""
    for round_ in range(3):
        state = tmp_path / f"state{round_}"
        probes = _run_first_writes(state, 8, "-")
        secrets = _one_key_decrypts_everything(state, probes)
        assert secrets and set(secrets) <= {f"s{i}" for i in range(8)}


# -- a damaged store or key file: one line that says which ----------------------------------------------
def _written(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    store(tmp_path).put_pending({"a": (VALUE, {})})
    enc = tmp_path / "secrets.enc"
    return enc, enc.read_bytes(), Fernet((tmp_path / "keys" / "secrets.key").read_bytes().strip())


def _error(tmp_path) -> str:
    with pytest.raises(SecretStoreError) as err:
        store(tmp_path).get("a")
    assert "\n" not in str(err.value) and str(tmp_path / "secrets.enc") in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("damage", [
    pytest.param(lambda t: b"", id="empty"),
    pytest.param(lambda t: t[: len(t) // 2], id="cut-in-half"),
    pytest.param(lambda t: t[:-4], id="cut-at-a-base64-boundary"),
    pytest.param(lambda t: t[:-1], id="one-byte-short"),
    pytest.param(lambda t: b"not a fernet token at all\n", id="not-base64"),
    pytest.param(lambda t: base64.urlsafe_b64encode(b"\x81" + base64.urlsafe_b64decode(t)[1:]), id="bad-version"),
    pytest.param(lambda t: base64.urlsafe_b64encode(base64.urlsafe_b64decode(t) + b"x" * 5), id="not-block-aligned"),
    pytest.param(lambda t: os.urandom(len(t)), id="random-bytes"),
    pytest.param(lambda t: b"\0" * len(t), id="zeroed"),
])
def test_truncated_or_corrupt_store_is_reported_as_such(tmp_path, monkeypatch, damage):
    enc, token, _ = _written(tmp_path, monkeypatch)
    enc.write_bytes(damage(token))
    size = enc.stat().st_size
    assert _error(tmp_path) == (f"{enc}: the secret store is truncated or corrupt ({size} bytes); "
                                "restore it from a backup")


def test_a_modified_token_or_another_key_is_a_decrypt_error_naming_the_key(tmp_path, monkeypatch):
    enc, token, _ = _written(tmp_path, monkeypatch)
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[40] ^= 1  # same shape, one ciphertext bit flipped: only the HMAC can tell
    enc.write_bytes(base64.urlsafe_b64encode(bytes(raw)))
    key_file = tmp_path / "keys" / "secrets.key"
    assert _error(tmp_path) == (f"cannot decrypt {enc} with the configured key ({key_file}): wrong key, or the "
                                "file was modified; use the key it was written with, or restore the store from a "
                                "backup")
    enc.write_bytes(token)
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    assert f"(${KEY_ENV}, which overrides {key_file}): wrong key" in _error(tmp_path)


def test_a_trailing_newline_is_not_corruption(tmp_path, monkeypatch):
    enc, token, _ = _written(tmp_path, monkeypatch)
    enc.write_bytes(token + b"\n")  # an editor's doing; Fernet itself accepts it
    assert store(tmp_path).get("a") == VALUE


@pytest.mark.parametrize("plain", [
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"\xff\xfe", id="not-utf8"),
    pytest.param(b"[]", id="not-an-object"),
    pytest.param(b'{"format": 1}', id="no-secrets"),
    pytest.param(b'{"format": 1, "secrets": {"a": {"tags": {}, "versions": {}, "stages": {"AWSCURRENT": "v"}}}}',
                 id="label-to-nowhere"),
    pytest.param(b'{"format": 1, "secrets": {"a": {"tags": {}, "versions": {"v": {"value": "pw"}}, '
                 b'"stages": {"AWSCURRENT": "v"}}}}', id="value-not-an-object"),
    pytest.param(b'{"format": 1, "secrets": {"a\\nb": []}}', id="hostile-name"),
])
def test_a_store_that_decrypts_to_something_else_is_corrupt(tmp_path, monkeypatch, plain):
    enc, _, key = _written(tmp_path, monkeypatch)
    enc.write_bytes(key.encrypt(plain))
    msg = _error(tmp_path)
    assert msg.startswith(f"{enc}: the secret store is ") and msg.endswith("restore it from a backup")
    assert "corrupt" in msg


def test_a_store_from_a_newer_format_says_so(tmp_path, monkeypatch):
    enc, _, key = _written(tmp_path, monkeypatch)
    enc.write_bytes(key.encrypt(b'{"format": 2, "secrets": {}}'))
    assert "unknown format '2' (this version reads format 1)" in _error(tmp_path)


@pytest.mark.parametrize("content, expected", [
    (b"", "the key is empty"),
    (b"\n  \n", "the key is empty"),
    (b"garbage\n", "not a valid Fernet key (32 url-safe base64-encoded bytes)"),
    (b"\xff\xfe\x00", "not a valid Fernet key"),
    (base64.urlsafe_b64encode(b"k" * 31), "not a valid Fernet key"),
])
def test_an_empty_or_garbage_key_file_is_named_and_never_replaced(tmp_path, monkeypatch, content, expected):
    monkeypatch.delenv(KEY_ENV, raising=False)
    key_file = tmp_path / "keys" / "secrets.key"
    key_file.parent.mkdir()
    key_file.write_bytes(content)
    key_file.chmod(0o600)
    other_store = tmp_path / "secrets.enc"
    for action in (lambda s: s.put_pending({"a": (VALUE, {})}),  # fresh store: still never a new key
                   lambda s: s.get("a") if other_store.write_bytes(Fernet(Fernet.generate_key()).encrypt(b"{}"))
                   else None):
        with pytest.raises(SecretStoreError) as err:
            action(store(tmp_path))
        assert str(err.value).startswith(f"{key_file}: ") and expected in str(err.value)
        assert "restore the key file from a backup" in str(err.value) and "\n" not in str(err.value)
        assert key_file.read_bytes() == content


def test_a_key_path_that_is_not_a_file_is_one_line_and_never_blocks(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    key_file = tmp_path / "keys" / "secrets.key"
    key_file.parent.mkdir()
    os.mkfifo(key_file, 0o600)  # opening a FIFO for reading would wait for a writer forever
    with pytest.raises(SecretStoreError, match=f"cannot read the key file {key_file}: not a regular file"):
        store(tmp_path).put_pending({"a": (VALUE, {})})
    key_file.unlink()
    key_file.mkdir(mode=0o700)
    with pytest.raises(SecretStoreError, match=f"cannot read the key file {key_file}: not a regular file"):
        store(tmp_path).put_pending({"a": (VALUE, {})})


# -- write_private: a full disk or a read-only directory is one line, the old file intact ------------------
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _only_the_file(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_write_private_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "i" / "secrets.enc"
    write_private(path, b"old")
    with monkeypatch.context() as m:
        m.setattr(os, "write", _enospc)
        with pytest.raises(StateError) as err:
            write_private(path, b"new" * 1000)
    assert str(err.value) == (f"cannot write {path}: No space left on device; free space and re-run "
                              "(the file was not changed)")
    assert path.read_bytes() == b"old" and _only_the_file(path) == ["secrets.enc"]
    assert isinstance(err.value.__cause__, OSError)  # --debug still shows the system error


def test_write_private_when_the_disk_fills_half_way(tmp_path, monkeypatch):
    path = tmp_path / "secrets.enc"
    write_private(path, b"old")
    real_write, calls = os.write, []

    def short_then_full(fd, data):
        calls.append(len(data))
        if len(calls) > 1:
            _enospc()
        return real_write(fd, bytes(data[:10]))  # a short write, as a nearly full disk does

    with monkeypatch.context() as m:
        m.setattr(os, "write", short_then_full)
        with pytest.raises(StateError, match="No space left on device; free space and re-run"):
            write_private(path, b"x" * 100)
    assert calls == [100, 90]  # the short write was continued, not mistaken for success
    assert path.read_bytes() == b"old" and _only_the_file(path) == ["secrets.enc"]


def test_write_private_when_fsync_reports_the_error(tmp_path, monkeypatch):
    path = tmp_path / "secrets.enc"
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, os.strerror(errno.EIO))))
        with pytest.raises(StateError, match=f"^cannot write {path}: Input/output error; fix that and re-run"):
            write_private(path, b"new")
    assert not path.exists() and _only_the_file(path) == []


@pytest.mark.parametrize("code, hint", [
    (errno.EROFS, "the file system is read-only; make it writable (or move the state directory) and re-run"),
    (errno.EACCES, "make {dir} writable by this user and re-run"),
    (errno.EDQUOT, "free space (disk quota exceeded) and re-run"),
])
def test_write_private_in_a_directory_that_refuses_writes(tmp_path, monkeypatch, code, hint):
    path = tmp_path / "secrets.enc"
    path.write_bytes(b"old")

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path / ".secrets.enc.x.tmp"))

    with monkeypatch.context() as m:
        m.setattr(tempfile, "mkstemp", refuse)
        with pytest.raises(StateError) as err:
            write_private(path, b"new")
    assert str(err.value) == (f"cannot write {path}: {os.strerror(code)}; {hint.format(dir=tmp_path)} "
                              "(the file was not changed)")
    assert path.read_bytes() == b"old"


def _read_only_dir_case(base) -> None:
    path = base / "ro" / "secrets.enc"
    write_private(path, b"old")
    path.parent.chmod(0o500)
    try:
        with pytest.raises(StateError, match=f"cannot write {path}: Permission denied; make"):
            write_private(path, b"new")
    finally:
        path.parent.chmod(0o700)
    assert path.read_bytes() == b"old" and _only_the_file(path) == ["secrets.enc"]


def test_write_private_in_a_read_only_directory_for_real():
    """Root writes through mode 0500, so as root the case runs in a child that has dropped to nobody."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="ro-case-"))
    try:
        if os.geteuid() != 0:
            _read_only_dir_case(base)
            return
        os.chown(base, 65534, 65534)
        pid = os.fork()
        if pid == 0:  # child: never returns into pytest
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                _read_only_dir_case(base)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the read-only directory case failed as nobody"
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def test_write_private_under_a_file_names_the_directory(tmp_path):
    (tmp_path / "state").write_text("a file where a directory should be")
    path = tmp_path / "state" / "i" / "secrets.enc"
    with pytest.raises(StateError) as err:
        write_private(path, b"new")
    assert str(err.value) == (f"cannot write {path}: Not a directory ({path.parent}); a parent of that path is "
                              "not a directory; move it away and re-run (the file was not changed)")


def test_write_private_when_the_directory_sync_fails_says_the_file_is_written(tmp_path, monkeypatch):
    path = tmp_path / "secrets.enc"
    real_fsync, calls = os.fsync, []

    def file_ok_dir_full(fd):
        calls.append(fd)
        if len(calls) > 1:
            _enospc()
        real_fsync(fd)

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", file_ok_dir_full)
        with pytest.raises(StateError, match=f"^wrote {path} but could not sync its directory: No space left"):
            write_private(path, b"new")
    assert path.read_bytes() == b"new"


def test_write_private_interrupted_cleans_up_and_is_not_translated(tmp_path, monkeypatch):
    path = tmp_path / "secrets.enc"

    def interrupted(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(os, "write", interrupted)
        with pytest.raises(KeyboardInterrupt):
            write_private(path, b"new")
    assert _only_the_file(path) == []


def test_a_full_disk_during_put_pending_leaves_the_store_and_key_usable(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    key_file = tmp_path / "keys" / "secrets.key"
    with monkeypatch.context() as m:  # the very first write: the key cannot be created either
        m.setattr(os, "write", _enospc)
        with pytest.raises(StateError, match=f"^cannot write {key_file}: No space left on device; free space"):
            store(tmp_path).put_pending({"a": (VALUE, {})})
    assert not key_file.exists() and list(key_file.parent.iterdir()) == []
    s = store(tmp_path)
    s.put_pending({"a": (VALUE, {})})
    with monkeypatch.context() as m:
        m.setattr(os, "write", _enospc)
        with pytest.raises(StateError, match=f"^cannot write {tmp_path / 'secrets.enc'}: No space left"):
            s.put_pending({"b": (VALUE, {})})
    fresh = store(tmp_path)
    assert fresh.get("a") == VALUE and fresh.get("b") is None
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_reload_rereads_only_when_the_file_changed(tmp_path, monkeypatch):
    from shared_mysql.secrets.file import FileSecretStore

    monkeypatch.delenv("SHARED_MYSQL_SECRETS_KEY", raising=False)
    a = FileSecretStore(tmp_path / "s.enc", tmp_path / "s.key")
    b = FileSecretStore(tmp_path / "s.enc", tmp_path / "s.key")
    a.put_pending({"x": ({"password": "1"}, {})})
    decrypts = []
    real = FileSecretStore._decrypt
    monkeypatch.setattr(FileSecretStore, "_decrypt", lambda self: decrypts.append(1) or real(self))
    assert b.get("x", "AWSPENDING") == {"password": "1"} and len(decrypts) == 1
    b.reload()
    b.get("x", "AWSPENDING")
    assert len(decrypts) == 1  # unchanged file: the cached document is kept
    a.put_pending({"x": ({"password": "2"}, {})})  # another writer: a new inode
    b.reload()
    assert b.get("x", "AWSPENDING") == {"password": "2"} and len(decrypts) == 2
    a.reload()
    assert a.get("x", "AWSPENDING") == {"password": "2"} and len(decrypts) == 2  # its own write: no re-read


def test_a_failed_write_is_not_kept_in_memory(tmp_path, monkeypatch):
    import errno

    from shared_mysql.errors import StateError
    from shared_mysql.secrets import file as f

    monkeypatch.delenv("SHARED_MYSQL_SECRETS_KEY", raising=False)
    s = f.FileSecretStore(tmp_path / "s.enc", tmp_path / "s.key")
    s.put_pending({"x": ({"password": "1"}, {})})
    monkeypatch.setattr(f, "_write_temp", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(StateError):
        s.put_pending({"x": ({"password": "2"}, {})})
    monkeypatch.undo()
    s.reload()
    assert s.get("x", "AWSPENDING") == {"password": "1"}


def test_json_state_files_are_never_read_through_a_link_or_a_fifo(tmp_path):
    """Journals and records (restore journal, refresh-aws.json, isolations.json) share one reader: a planted
    symlink reads as empty (never followed), a FIFO never blocks, and the writer is atomic and 0600."""
    import os
    import stat

    from shared_mysql.secrets.file import read_json_dict, write_json

    real = tmp_path / "elsewhere.json"
    real.write_text('{"stolen": 1}')
    (tmp_path / "link.json").symlink_to(real)
    assert read_json_dict(tmp_path / "link.json") == {}
    os.mkfifo(tmp_path / "fifo.json")
    assert read_json_dict(tmp_path / "fifo.json") == {}
    assert read_json_dict(tmp_path / "missing.json") == {}
    (tmp_path / "list.json").write_text("[1]")
    assert read_json_dict(tmp_path / "list.json") == {}
    write_json(tmp_path / "s" / "state.json", {"b": 1, "a": [2]})
    assert read_json_dict(tmp_path / "s" / "state.json") == {"a": [2], "b": 1}
    assert stat.S_IMODE(os.stat(tmp_path / "s" / "state.json").st_mode) == 0o600
