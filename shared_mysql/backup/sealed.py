"""The at-rest format of every backup and archived-binlog file: zstd-compressed, AES-256-GCM-encrypted records.

    file    = MAGIC (4) | prefix (8, random) | record*
    record  = length (4, big-endian, of the ciphertext) | flags (1) | ciphertext (zstd frame, encrypted, + tag)

Each record is one zstd frame of up to SEGMENT bytes, sealed with nonce = prefix | record number and with the file's
name, the record number and its flags as associated data: a swapped, reordered, truncated or edited file fails
authentication, and the last record carries FINAL, so a file cut at a record boundary is caught too. Records are
independent, so big files stream both ways in bounded memory.

The data key is per backup (or per archive), random, and stored only wrapped: by the secret store's own key
(file backend) or by KMS (`GenerateDataKey`, aws backend), so a stolen backup directory without the store's key
(or KMS access) is ciphertext.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import SharedMySQLError

MAGIC = b"SMB1"
SEGMENT = 4 << 20
FINAL = 1
LEVEL = 1  # zstd level 1: ~500 MB/s per core here; higher levels cost more CPU than the disk they save
_HEAD = struct.Struct(">IB")
MAX_RECORD = SEGMENT + (SEGMENT >> 3) + 4096  # a zstd frame of incompressible data, plus the tag


class CorruptFile(SharedMySQLError):
    exit_code = 3


@dataclass
class Written:
    raw_bytes: int
    size: int
    sha256: str


class DataKey:
    """A 32-byte AES-GCM key and the compressor/decompressor that go with it."""

    def __init__(self, key: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(key) != 32:
            raise ValueError("a data key is 32 bytes")
        self._aead = AESGCM(key)

    @staticmethod
    def generate() -> bytes:
        return os.urandom(32)

    def seal(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, data, aad)

    def open(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(nonce, data, aad)


class SealedWriter:
    """Write plaintext in any pieces; records are cut at SEGMENT bytes. `close()` writes the FINAL record."""

    def __init__(self, out: BinaryIO, key: DataKey, name: str):
        import zstandard

        self._out = out
        self._key = key
        self._aad = name.encode()
        self._prefix = os.urandom(8)
        self._n = 0
        self._buf: list[bytes] = []
        self._buffered = 0
        self._raw = 0
        self._size = len(MAGIC) + 8
        self._sha = hashlib.sha256()
        self._zstd = zstandard.ZstdCompressor(level=LEVEL)
        self._emit(MAGIC + self._prefix)

    def _emit(self, b: bytes) -> None:
        self._out.write(b)
        self._sha.update(b)

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._raw += len(data)
        if self._buffered + len(data) < SEGMENT:
            self._buf.append(data)
            self._buffered += len(data)
            return
        view = memoryview(data)
        need = SEGMENT - self._buffered
        self._buf.append(view[:need])
        self._record(b"".join(self._buf), 0)
        off = need
        while len(view) - off >= SEGMENT:  # whole segments straight from the caller's buffer
            self._record(view[off:off + SEGMENT], 0)
            off += SEGMENT
        rest = view[off:]
        self._buf, self._buffered = ([bytes(rest)] if len(rest) else []), len(rest)

    def _record(self, plain: bytes, flags: int) -> None:
        nonce = self._prefix + struct.pack(">I", self._n)
        aad = self._aad + b"|" + struct.pack(">IB", self._n, flags)
        ct = self._key.seal(nonce, self._zstd.compress(plain), aad)
        self._emit(_HEAD.pack(len(ct), flags) + ct)
        self._size += _HEAD.size + len(ct)
        self._n += 1

    def close(self) -> Written:
        self._record(b"".join(self._buf), FINAL)
        self._buf, self._buffered = [], 0
        return Written(self._raw, self._size, self._sha.hexdigest())


def read_sealed(f: BinaryIO, key: DataKey | None, name: str, label: str) -> Iterator[bytes]:
    """Yield the plaintext records of a sealed file; `key=None` checks the framing only (no key needed).
    Raises CorruptFile naming `label` on bad magic, a failed tag, a truncated or missing final record."""
    import zstandard

    head = f.read(12)
    if len(head) != 12 or head[:4] != MAGIC:
        raise CorruptFile(f"{label}: not a shared-mysql sealed file (bad header)")
    prefix = head[4:]
    aad0 = name.encode() + b"|"
    dz = zstandard.ZstdDecompressor()
    n = 0
    while True:
        h = f.read(_HEAD.size)
        if not h:
            raise CorruptFile(f"{label}: truncated (no final record after {n} records)")
        if len(h) != _HEAD.size:
            raise CorruptFile(f"{label}: truncated inside record {n}")
        length, flags = _HEAD.unpack(h)
        if length > MAX_RECORD or flags & ~FINAL:
            raise CorruptFile(f"{label}: record {n} has an impossible header (corrupted)")
        ct = f.read(length)
        if len(ct) != length:
            raise CorruptFile(f"{label}: truncated inside record {n}")
        if key is not None:
            try:
                plain = key.open(prefix + struct.pack(">I", n), ct, aad0 + struct.pack(">IB", n, flags))
            except Exception:  # noqa: BLE001 - cryptography's InvalidTag: wrong key, or edited bytes
                raise CorruptFile(f"{label}: record {n} fails authentication (corrupted, swapped, or another "
                                  "key)") from None
            try:
                yield dz.decompress(plain, max_output_size=SEGMENT) if plain else b""
            except zstandard.ZstdError as exc:
                raise CorruptFile(f"{label}: record {n} does not decompress ({exc})") from None
        n += 1
        if flags & FINAL:
            if f.read(1):
                raise CorruptFile(f"{label}: bytes after the final record")
            return


def write_file(path: Path, key: DataKey, name: str, chunks) -> Written:
    """Seal `chunks` into `path` (0600, fsynced)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb", buffering=1 << 20) as out:
        w = SealedWriter(out, key, name)
        for c in chunks:
            w.write(c)
        res = w.close()
        out.flush()
        os.fsync(out.fileno())
    return res


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


# -- wrapping the data key --------------------------------------------------------------------------------------
def wrap_key(target, data_key: bytes, context: str) -> dict:
    """The data key wrapped by the target's secret backend: the store's Fernet key, or KMS on aws."""
    if target.config.secrets_backend == "aws":
        from ..aws import client_for, describe_error

        try:
            kms = client_for(target.config, "kms")
            blob = kms.encrypt(KeyId=target.config.secrets.kms_key_id, Plaintext=data_key,
                               EncryptionContext={"shared-mysql": context})["CiphertextBlob"]
        except Exception as exc:  # noqa: BLE001 - botocore errors, translated
            raise SharedMySQLError(f"cannot wrap the backup key with KMS key {target.config.secrets.kms_key_id}: "
                                   f"{describe_error(exc)}; check kms:Encrypt on it") from None
        return {"kind": "kms", "key_id": target.config.secrets.kms_key_id, "context": context,
                "wrapped": base64.b64encode(blob).decode()}
    fernet = target.store._cipher(create=True)
    return {"kind": "store", "context": context, "wrapped": fernet.encrypt(context.encode() + b"|" + data_key).decode()}


def unwrap_key(target, wrapped: dict, label: str) -> DataKey:
    kind = wrapped.get("kind")
    if kind == "kms":
        from ..aws import client_for, describe_error

        try:
            kms = client_for(target.config, "kms")
            key = kms.decrypt(CiphertextBlob=base64.b64decode(wrapped["wrapped"]),
                              EncryptionContext={"shared-mysql": wrapped["context"]})["Plaintext"]
        except Exception as exc:  # noqa: BLE001
            raise SharedMySQLError(f"{label}: cannot unwrap the backup key with KMS: {describe_error(exc)}; check "
                                   "kms:Decrypt on the key it was made with") from None
        return DataKey(key)
    if kind == "store":
        from cryptography.fernet import InvalidToken

        try:
            plain = target.store._cipher().decrypt(wrapped["wrapped"].encode())
        except InvalidToken:
            raise SharedMySQLError(f"{label}: the backup key does not open with this secret store's key; restore "
                                   "the store's key file it was made with") from None
        ctx, _, key = plain.partition(b"|")
        if ctx != str(wrapped.get("context", "")).encode() or len(key) != 32:
            raise SharedMySQLError(f"{label}: the wrapped backup key belongs to {ctx.decode(errors='replace')}, "
                                   "not to this file (swapped manifests?)")
        return DataKey(key)
    raise SharedMySQLError(f"{label}: unknown key wrapping {kind!r}")
