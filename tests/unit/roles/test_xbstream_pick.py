"""xbstream-pick.sh, which takes a backup's binlog position out of the
mariadb-backup stream backup.sh stores: chunks written here in the format
mbstream writes (the e2e backups read real mariadb-backup streams)."""
import os
import struct
import subprocess
import zlib

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "mysql_cluster", "files", "scripts",
                      "xbstream-pick.sh")


def chunk(path, data=b"", offset=0, kind=b"P"):
    p = path.encode()
    head = b"XBSTCK01" + b"\0" + kind + struct.pack("<I", len(p)) + p
    if kind == b"E":
        return head
    return head + struct.pack("<QQI", len(data), offset, zlib.crc32(data)) + data


def pick(tmp_path, stream, *names):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    proc = subprocess.run(["bash", SCRIPT, str(out), *names], input=stream, capture_output=True, check=False)
    return proc.returncode, proc.stderr.decode(), {p.name: p.read_bytes() for p in out.iterdir()}


def test_only_the_named_files_in_their_chunks(tmp_path):
    big = os.urandom(3 * 1048576 + 7)
    stream = (chunk("ibdata1", big[:2097152]) + chunk("ibdata1", big[2097152:], 2097152) + chunk("ibdata1", kind=b"E")
              + chunk("db/t.ibd", b"x" * 100) + chunk("db/t.ibd", kind=b"E")
              + chunk("mariadb_backup_binlog_info", b"binlog.000002\t339\t")
              + chunk("mariadb_backup_binlog_info", b"0-100-8\n", 18) + chunk("mariadb_backup_binlog_info", kind=b"E")
              + chunk("mariadb_backup_checkpoints", b"backup_type = full-backuped\n"))
    rc, err, files = pick(tmp_path, stream, "mariadb_backup_binlog_info", "mariadb_backup_checkpoints", "xtrabackup_binlog_info")
    assert rc == 0, err
    assert files == {"mariadb_backup_binlog_info": b"binlog.000002\t339\t0-100-8\n",
                     "mariadb_backup_checkpoints": b"backup_type = full-backuped\n"}


def test_a_damaged_stream_fails_saying_why(tmp_path):
    good = chunk("mariadb_backup_binlog_info", b"binlog.000002\t339\t0-100-8\n")
    rc, err = pick(tmp_path, good[:-5], "mariadb_backup_binlog_info")[:2]
    assert rc != 0 and "the stream ends inside a chunk" in err
    rc, err = pick(tmp_path, b"garbage!" + good, "mariadb_backup_binlog_info")[:2]
    assert rc != 0 and "not an xbstream chunk" in err
    rc, err = pick(tmp_path, chunk("f", b"ab", kind=b"S"), "f")[:2]
    assert rc != 0 and 'unknown chunk type "S"' in err
