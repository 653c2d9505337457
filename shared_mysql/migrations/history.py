"""The schema history table, exactly as Flyway creates and writes it on MySQL/MariaDB (MySQLDatabase,
JdbcTableSchemaHistory), and Flyway's own named lock, so that this tool and Flyway never migrate at once."""

from __future__ import annotations

from dataclasses import dataclass

from ..sql.quoting import ident, string
from .scripts import abbreviate_description, abbreviate_script

BASELINE_DESCRIPTION = "<< Flyway Baseline >>"


@dataclass
class Row:
    rank: int
    version: str | None
    description: str
    type: str
    script: str
    checksum: int | None
    installed_by: str
    installed_on: str
    execution_time: int
    success: bool


def create_sql(db: str, table: str, mariadb: bool) -> list[str]:
    # MariaDB's Flyway leaves the primary key constraint unnamed (MariaDBDatabase.getConstraintName is "").
    pk = "CONSTRAINT PRIMARY KEY" if mariadb else f"CONSTRAINT {ident(table + '_pk')} PRIMARY KEY"
    q = f"{ident(db)}.{ident(table)}"
    return [f"CREATE TABLE IF NOT EXISTS {q} (\n    `installed_rank` INT NOT NULL,\n    `version` VARCHAR(50),\n"
            "    `description` VARCHAR(200) NOT NULL,\n    `type` VARCHAR(20) NOT NULL,\n"
            "    `script` VARCHAR(1000) NOT NULL,\n    `checksum` INT,\n    `installed_by` VARCHAR(100) NOT NULL,\n"
            "    `installed_on` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,\n    `execution_time` INT NOT NULL,\n"
            f"    `success` BOOL NOT NULL,\n    {pk} (`installed_rank`)\n) ENGINE=InnoDB",
            f"CREATE INDEX {ident(table + '_s_idx')} ON {q} (`success`)"]


def java_hash(s: str) -> int:
    """Java's String.hashCode (UTF-16 code units), as a signed 32-bit int."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def lock_name(db: str, table: str) -> str:
    """Flyway's MySQLNamedLockTemplate name: 'Flyway-' + hashCode of the quoted table."""
    return f"Flyway-{java_hash(f'`{db}`.`{table}`')}"


def exists(conn, q, db: str, table: str) -> bool:
    return bool(q(conn, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                        f"{string(db)} AND TABLE_NAME = {string(table)}")[0][0])


def read(conn, q, db: str, table: str) -> list[Row]:
    rows = q(conn, "SELECT installed_rank, version, description, type, script, checksum, installed_by, "
                   f"DATE_FORMAT(installed_on, '%Y-%m-%d %H:%i:%s'), execution_time, success FROM "
                   f"{ident(db)}.{ident(table)} ORDER BY installed_rank")
    return [Row(int(r[0]), r[1], r[2], r[3], r[4], None if r[5] is None else int(r[5]), r[6], r[7], int(r[8]),
                bool(r[9])) for r in rows]


def insert(conn, q, db: str, table: str, *, version: str | None, description: str, type_: str, script: str,
           checksum: int | None, execution_ms: int, success: bool, rank: int | None = None) -> None:
    t = f"{ident(db)}.{ident(table)}"
    rank_sql = str(rank) if rank is not None else f"(SELECT IFNULL(MAX(h.installed_rank), 0) + 1 FROM {t} h)"
    q(conn, f"INSERT INTO {t} (installed_rank, version, description, type, script, checksum, installed_by, "
            f"execution_time, success) SELECT {rank_sql}, {string(version) if version is not None else 'NULL'}, "
            f"{string(abbreviate_description(description))}, {string(type_)}, {string(abbreviate_script(script))}, "
            f"{checksum if checksum is not None else 'NULL'}, SUBSTRING_INDEX(USER(), '@', 1), {int(execution_ms)}, "
            f"{int(success)}")
