import os
import stat

import pytest
from cryptography.fernet import Fernet

from shared_mysql.errors import SecretStoreError
from shared_mysql.secrets import PREVIOUS
from shared_mysql.secrets.file import KEY_ENV, FileSecretStore

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
