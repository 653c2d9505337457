"""Backups without a server: the sealed file format, the SQL that moves rows, binlog headers, retention."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib

import pytest

from shared_mysql.backup import sqlgen
from shared_mysql.backup.archive import MAGIC, ROTATE, scan, successor
from shared_mysql.backup.sealed import SEGMENT, CorruptFile, DataKey, SealedWriter, read_sealed


def seal(data: bytes, name="b/x.sme", key=None, pieces=1) -> tuple[bytes, DataKey]:
    key = key or DataKey(DataKey.generate())
    out = io.BytesIO()
    w = SealedWriter(out, key, name)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        w.write(data[i:i + step])
    w.close()
    return out.getvalue(), key


def unseal(blob: bytes, key, name="b/x.sme") -> bytes:
    return b"".join(read_sealed(io.BytesIO(blob), key, name, "f"))


@pytest.mark.parametrize("size,pieces", [(0, 1), (1, 1), (SEGMENT - 1, 3), (SEGMENT, 1), (SEGMENT * 2 + 17, 7),
                                         (SEGMENT * 3, 1)])
def test_round_trip_any_size_and_piece_boundaries(size, pieces):
    data = os.urandom(size // 2) + bytes(size - size // 2)
    blob, key = seal(data, pieces=pieces)
    assert unseal(blob, key) == data


def test_the_plaintext_is_not_in_the_file():
    marker = b"card-4111111111111111-" * 1000
    blob, _ = seal(marker)
    assert b"4111111111111111" not in blob


def test_every_single_byte_change_is_caught():
    data = os.urandom(5000)
    blob, key = seal(data)
    for i in range(0, len(blob), max(1, len(blob) // 200)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(CorruptFile):
            unseal(bytes(bad), key)


@pytest.mark.parametrize("cut", [0, 3, 12, 14, 20, -1, -16])
def test_truncation_anywhere_is_caught(cut):
    data = os.urandom(SEGMENT + 100)
    blob, key = seal(data)
    with pytest.raises(CorruptFile):
        unseal(blob[:cut], key)


def test_a_file_cut_at_a_record_boundary_is_caught():
    data = os.urandom(SEGMENT * 2)
    blob, key = seal(data)
    # The first record ends after the header (12) + length/flags (5) + its ciphertext.
    first_len = struct.unpack(">I", blob[12:16])[0]
    with pytest.raises(CorruptFile, match="no final record"):
        unseal(blob[:12 + 5 + first_len], key)


def test_a_file_moved_to_another_name_or_key_fails():
    blob, key = seal(b"rows of orders")
    with pytest.raises(CorruptFile):
        unseal(blob, key, name="b/other.sme")
    with pytest.raises(CorruptFile):
        unseal(blob, DataKey(DataKey.generate()))


def test_bytes_after_the_final_record_are_caught():
    blob, key = seal(b"abc")
    with pytest.raises(CorruptFile, match="after the final"):
        unseal(blob + b"x", key)


def test_an_impossible_record_length_is_refused_before_reading_it():
    blob, key = seal(b"abc")
    bad = blob[:12] + struct.pack(">IB", 0xFFFFFFFF, 1) + blob[17:]
    with pytest.raises(CorruptFile, match="impossible header"):
        unseal(bad, key)


# -- SQL ----------------------------------------------------------------------------------------------------------
T = sqlgen.Table("orders_db", "t`x", [sqlgen.Column("id", "bigint"), sqlgen.Column("doc", "json"),
                                      sqlgen.Column("flags", "bit"), sqlgen.Column("total", "decimal"),
                                      sqlgen.Column("g", "int", generated=True),
                                      sqlgen.Column("name", "varchar", octets=400)],
                 pk=["id"])


def test_chunk_query_is_exact_and_hex_only():
    assert sqlgen.chunk_query(T, 1, 100) == (
        "SELECT COUNT(*), GROUP_CONCAT(CONCAT_WS(0x09,IFNULL(`id`,0x5c4e),IFNULL(HEX(`doc`),0x5c4e),"
        "IFNULL(CAST(`flags` AS UNSIGNED),0x5c4e),IFNULL(`total`,0x5c4e),IFNULL(REPLACE(REPLACE(REPLACE(CAST(`name` "
        "AS BINARY),0x5c,0x5c5c),0x09,0x5c74),0x0a,0x5c6e),0x5c4e)) SEPARATOR 0x0a) FROM `orders_db`.`t``x` FORCE "
        "INDEX (PRIMARY) WHERE `id` BETWEEN 1 AND 100")
    assert "'" not in sqlgen.chunk_query(T, 1, 2)  # no string literal: same meaning under every sql_mode


def test_generated_columns_are_not_dumped_and_load_sets_bit_and_mysql8_json():
    assert [c.name for c in T.stored] == ["id", "doc", "flags", "total", "name"]
    assert sqlgen.load_statement(T, "/s/f.fifo") == (
        "LOAD DATA INFILE '/s/f.fifo' INTO TABLE `orders_db`.`t``x` CHARACTER SET binary "
        "(`id`,@v1,@v2,`total`,`name`) SET `doc`=UNHEX(@v1),`flags`=CAST(@v2 AS UNSIGNED)")
    assert sqlgen.load_statement(T, "/s/f.fifo", mysql8=True).endswith(
        "(`id`,@v1,@v2,`total`,`name`) SET `doc`=CONVERT(UNHEX(@v1) USING utf8mb4),`flags`=CAST(@v2 AS UNSIGNED)")


def test_long_strings_blobs_json_and_spatial_travel_as_hex_short_ones_escaped():
    kinds = {c: sqlgen.Column("x", t, octets=o).kind for c, (t, o) in {
        "char120": ("char", 480), "vc255": ("varchar", 1020), "blob": ("blob", 65535), "json": ("json", None),
        "point": ("point", None), "enum": ("enum", 12), "int": ("int", None), "bit": ("bit", None)}.items()}
    assert kinds == {"char120": "bytes", "vc255": "hex", "blob": "hex", "json": "hex", "point": "hex",
                     "enum": "bytes", "int": "plain", "bit": "bit"}


def test_tables_without_an_integer_key_stream_in_key_order():
    t = sqlgen.Table("d", "t", [sqlgen.Column("a", "varchar"), sqlgen.Column("b", "int")], pk=["a", "b"])
    assert t.int_pk is None
    assert sqlgen.rows_query(t).endswith("FROM `d`.`t` ORDER BY `a`,`b`")
    assert sqlgen.Table("d", "t", [sqlgen.Column("a", "varchar")]).int_pk is None


def test_split_create_moves_secondary_indexes_after_the_load():
    create = ("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `k` int(11) NOT NULL,\n  `c` text,\n"
              "  PRIMARY KEY (`id`),\n  KEY `k_1` (`k`),\n  UNIQUE KEY `uc` (`c`(10)),\n  FULLTEXT KEY `ft` (`c`)\n"
              ") ENGINE=InnoDB")
    table, idx = sqlgen.split_create(create)
    assert table == ("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `k` int(11) NOT NULL,\n  `c` text,\n"
                     "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB")
    assert idx == ["KEY `k_1` (`k`)", "UNIQUE KEY `uc` (`c`(10))", "FULLTEXT KEY `ft` (`c`)"]
    fk = create.replace("  FULLTEXT KEY `ft` (`c`)\n",
                        "  FULLTEXT KEY `ft` (`c`),\n  CONSTRAINT `f` FOREIGN KEY (`k`) REFERENCES `p` (`id`)\n")
    assert sqlgen.split_create(fk) == (fk, [])


def test_a_column_comment_that_looks_like_an_index_line_stays():
    create = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL COMMENT 'x\\n  KEY `y` (`id`)',\n  PRIMARY KEY (`id`)\n)"
    assert sqlgen.split_create(create) == (create, [])


@pytest.mark.parametrize("raw", [b"", b"a\tb", b"x\ny", b"back\\slash", b"\\N", b"\x00\xff\x1a", "😀".encode()])
def test_escaping_round_trips_through_the_insert_path(raw):
    esc = raw.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n")
    assert sqlgen.unescape(esc) == raw
    assert sqlgen.unescape(b"\\N") is None


def test_insert_values_are_hex_and_plain_values_are_checked():
    t = sqlgen.Table("d", "t", [sqlgen.Column("id", "int"), sqlgen.Column("s", "varchar", octets=40),
                                sqlgen.Column("b", "bit"), sqlgen.Column("h", "blob", octets=65535)])
    assert sqlgen.insert_values(t, [b"1\tab\t5\t00FF", b"2\t\\N\t\\N\t\\N", b"3\t\t0\t"]) == (
        "INSERT INTO `d`.`t` (`id`,`s`,`b`,`h`) VALUES ('1',X'6162',5,X'00FF'),('2',NULL,NULL,NULL),('3','',0,'')")
    with pytest.raises(ValueError, match="hexadecimal"):
        sqlgen.insert_values(t, [b"1\tab\t5\t00'); DROP"])
    with pytest.raises(ValueError):
        sqlgen.insert_values(t, [b"1); DROP TABLE x; --\tab\t1\t"])
    with pytest.raises(ValueError, match="fields"):
        sqlgen.insert_values(t, [b"1\tab"])


# -- binlog headers -----------------------------------------------------------------------------------------------
def event(ts: int, typ: int, body: bytes = b"") -> bytes:
    return struct.pack("<IBIIIH", ts, typ, 1, 19 + len(body), 0, 0) + body


def test_scan_counts_events_and_knows_a_closed_file():
    data = MAGIC + event(100, 15, b"x" * 50) + event(101, 2, b"q") + event(102, ROTATE, b"binlog.000002")
    ev = scan(data)
    assert (ev.count, ev.first_ts, ev.last_ts, ev.complete, ev.end) == (3, 100, 102, True, len(data))
    torn = data[:-5]
    ev = scan(torn)
    assert (ev.count, ev.complete) == (2, False)
    assert scan(b"garbage").count == 0
    # a hostile size field cannot make it loop or read past the end
    assert scan(MAGIC + struct.pack("<IBIIIH", 1, 2, 1, 3, 0, 0)).count == 0


def test_binlog_names():
    assert successor("binlog.000009") == "binlog.000010"
    assert successor("mysql-bin.999999") == "mysql-bin.1000000"


def test_time_parsing():
    from shared_mysql.backup.restore import parse_time
    from shared_mysql.errors import UsageError

    assert parse_time("2026-11-26 10:15:00Z") == 1795688100
    assert parse_time("2026-11-26T19:15:00+09:00") == 1795688100
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        assert parse_time("2026-11-26 10:15:00") == 1795688100
    finally:
        del os.environ["TZ"]
        time.tzset()
    with pytest.raises(UsageError, match="not a time"):
        parse_time("yesterday")


def test_crc_of_a_file_is_the_crc_of_its_bytes():
    # the manifest's crc32 is zlib's over the file's plaintext: what `verify` recomputes
    lines = [b"1\ta", b"2\tb"]
    crc = 0
    for ln in lines:
        crc = zlib.crc32(ln, crc)
        crc = zlib.crc32(b"\n", crc)
    assert crc == zlib.crc32(b"1\ta\n2\tb\n")


# -- batching the roll-forward ------------------------------------------------------------------------------------
def _stream(n, cut=False, ddl_after=None):
    out = [b"/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/;", b"DELIMITER /*!*/;", b"# at 4",
           b"#261127  0:13:08 server id 1  end_log_pos 256 Start", b"BINLOG '", b"AAAA", b"'/*!*/;"]
    for k in range(n):
        out += [b"# at %d" % (100 + k), b"#261127 GTID 0-1-%d trans" % k,
                b"/*M!100001 SET @@session.gtid_seq_no=%d*//*!*/;" % k, b"START TRANSACTION", b"/*!*/;",
                b"# at 1", b"BINLOG '", b"ROW%d" % k, b"'/*!*/;"]
        if not (cut and k == n - 1):
            out += [b"# at 2", b"COMMIT/*!*/;"]
        if ddl_after == k:
            out += [b"# at 3", b"SET TIMESTAMP=1/*!*/;", b"ALTER TABLE t ADD c INT", b"/*!*/;"]
    out += [b"DELIMITER ;", b"# End of log file", b"ROLLBACK /* added by mysqlbinlog */;",
            b"/*!50003 SET COMPLETION_TYPE=@OLD_COMPLETION_TYPE*/;"]
    return [x + b"\n" for x in out]


def _replayed(text: bytes):
    """Which rows end up committed, reading the batched text as the client would (DDL commits implicitly)."""
    committed, pending = [], []
    for line in text.split(b"\n"):
        if line.startswith(b"ROW"):
            pending.append(line)
        elif line.startswith(b"COMMIT") or line.startswith(b"ALTER"):
            committed += pending
            pending = []
    return committed


@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1001, 2500])
def test_batching_commits_every_transaction_once(n):
    from shared_mysql.backup.batch import batched

    out = b"".join(batched(_stream(n), every=1000))
    assert _replayed(out) == [b"ROW%d" % k for k in range(n)]
    assert out.count(b"COMMIT/*!*/;") == (n + 999) // 1000 and b"gtid_seq_no" not in out
    assert b"added by mysqlbinlog" not in out


def test_a_transaction_cut_by_the_stop_point_is_never_sent():
    from shared_mysql.backup.batch import batched

    out = b"".join(batched(_stream(1500, cut=True), every=1000))
    assert _replayed(out) == [b"ROW%d" % k for k in range(1499)] and b"ROW1499" not in out


def test_ddl_between_transactions_starts_a_new_batch():
    from shared_mysql.backup.batch import batched

    out = b"".join(batched(_stream(10, ddl_after=4), every=1000))
    assert _replayed(out) == [b"ROW%d" % k for k in range(10)]
    assert out.count(b"START TRANSACTION") == 2 and out.index(b"ALTER") < out.index(b"ROW5")


def test_client_option_files_quote_every_character_a_password_may_hold(tmp_path):
    from shared_mysql.backup.tools import client_cnf, cnf_value
    from shared_mysql.db import ConnectionInfo
    from shared_mysql.errors import SharedMySQLError

    assert cnf_value('q"u\\o\'te #;x') == '"q\\"u\\\\o\'te #;x"'
    p = client_cnf(ConnectionInfo("127.0.0.1", 3306, "admin", "pw", ca="/ca.pem"), tmp_path)
    assert oct(p.stat().st_mode & 0o777) == "0o600" and "ssl-verify-server-cert" in p.read_text()
    with pytest.raises(SharedMySQLError, match="newline"):
        cnf_value("a\nb")


def test_a_table_a_foreign_key_points_at_keeps_its_unique_key_on_restore():
    """contacts.email REFERENCES accounts(email) (a UNIQUE key, not the primary key): deferring accounts' UNIQUE
    key until after the load made CREATE TABLE contacts fail (errno 150)."""
    from shared_mysql.backup import sqlgen

    accounts = ("CREATE TABLE `accounts` (\n  `id` int(11) NOT NULL,\n  `email` varchar(255) DEFAULT NULL,\n"
                "  PRIMARY KEY (`id`),\n  UNIQUE KEY `email` (`email`)\n) ENGINE=InnoDB")
    contacts = ("CREATE TABLE `contacts` (\n  `id` int(11) NOT NULL,\n  `email` varchar(255) DEFAULT NULL,\n"
                "  PRIMARY KEY (`id`),\n  KEY `email` (`email`),\n  CONSTRAINT `fk` FOREIGN KEY (`email`) REFERENCES "
                "`accounts` (`email`)\n) ENGINE=InnoDB")
    other = ("CREATE TABLE `we``ird` (\n  `id` int(11) NOT NULL,\n  `a` int DEFAULT NULL,\n  PRIMARY KEY (`id`),\n"
             "  CONSTRAINT `f2` FOREIGN KEY (`a`) REFERENCES `other_db`.`x``y` (`id`)\n) ENGINE=InnoDB")
    assert sqlgen.referenced_tables([accounts, contacts, other]) == {"accounts", "x`y"}
    assert sqlgen.split_create(accounts, keep_all=True) == (accounts, [])
    assert sqlgen.split_create(accounts)[1] == ["UNIQUE KEY `email` (`email`)"]


def test_server_messages_lose_every_quoted_value_even_one_holding_a_quote():
    """MariaDB quotes values without escaping them: `Duplicate entry 'o'brien@x' for key 'email'`. Cutting at the
    first closing quote let the rest of the value through."""
    from shared_mysql.backup.load import scrub

    msg = "Duplicate entry 'o'brien\\' secret@x' for key 'email'"
    out = scrub(msg)
    assert "brien" not in out and "secret" not in out and out.startswith("Duplicate entry '?'")
    assert scrub("Unknown column 'inf' in 'field list'") == "Unknown column '?'"
    assert scrub("no quotes here") == "no quotes here"
