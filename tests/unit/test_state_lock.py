"""The instance lock never writes through a planted link, nor in a state directory someone else owns."""

import os

import pytest

from shared_mysql.config import load_config
from shared_mysql.errors import SharedMySQLError
from shared_mysql.target import open_target


@pytest.fixture
def target(tmp_path):
    (tmp_path / "shared-mysql.yaml").write_text("identifier: lk\ntenants: {}\n")
    return open_target(load_config(tmp_path / "shared-mysql.yaml"))


def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(target, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target.state_dir.mkdir(parents=True, mode=0o700)
    (target.state_dir / "apply.lock").symlink_to(victim)
    with pytest.raises(SharedMySQLError, match="cannot open the lock .*remove it and re-run"):
        with target.lock():
            pass
    assert victim.read_text() == "precious\n"


def test_a_state_directory_of_another_user_is_refused_before_anything_is_written(target, tmp_path):
    if os.geteuid() != 0:
        pytest.fail("this test needs root to give a directory to another user (CI runs as root)")
    target.state_dir.mkdir(parents=True, mode=0o700)
    os.chown(target.state_dir, 65534, 65534)
    with pytest.raises(SharedMySQLError, match="owned by uid 65534, not a directory of this user"):
        with target.lock():
            pass
    assert not (target.state_dir / "apply.lock").exists()


def test_a_symlinked_state_directory_is_refused(target, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    target.state_dir.parent.mkdir(parents=True, mode=0o700)
    target.state_dir.symlink_to(elsewhere)
    with pytest.raises(SharedMySQLError, match="a symlink, not a directory of this user"):
        with target.lock():
            pass
    assert not (elsewhere / "apply.lock").exists()


def test_a_key_file_of_another_user_is_not_trusted(target):
    from shared_mysql.errors import SecretStoreError

    target.store.put_pending({"x": ({"password": "p"}, {})})
    os.chown(target.store.key_path, 65534, 65534)
    target.store._fernet = None
    target.store.reload()
    target.store._doc = None
    with pytest.raises(SecretStoreError, match="belongs to uid 65534"):
        target.store.get("x", "AWSPENDING")
