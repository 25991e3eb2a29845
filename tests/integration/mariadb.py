"""Throwaway MariaDB servers on loopback for the integration tests.

Each server has its own datadir, socket, pid file, port and log under one
temporary folder; it is started by us and stopped by its pid, never by name.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import pymysql

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, base, name, server_id, root_password):
        self.name = name
        self.server_id = server_id
        self.root_password = root_password
        self.dir = os.path.join(base, name)
        self.datadir = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.pidfile = os.path.join(self.dir, "mysqld.pid")
        self.log = os.path.join(self.dir, "error.log")
        self.port = free_port()
        self.proc = None

    def _cnf(self):
        path = os.path.join(self.dir, "my.cnf")
        with open(path, "w") as f:
            f.write(
                "[mariadbd]\n"
                f"datadir={self.datadir}\nsocket={self.socket}\npid-file={self.pidfile}\n"
                f"port={self.port}\nbind-address=127.0.0.1\nlog-error={self.log}\n"
                f"server-id={self.server_id}\nlog-bin={self.dir}/binlog\nlog-slave-updates=ON\n"
                f"relay-log={self.dir}/relay\ngtid-strict-mode=ON\nbinlog-format=ROW\n"
                "skip-name-resolve\ninnodb-buffer-pool-size=32M\ninnodb-log-file-size=16M\n"
                "performance-schema=OFF\nskip-slave-start\n"
            )
        return path

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        cnf = self._cnf()
        if not os.path.isdir(os.path.join(self.datadir, "mysql")):
            subprocess.run(
                [INSTALL_DB, f"--defaults-file={cnf}", "--user=root", "--auth-root-authentication-method=normal",
                 "--skip-test-db"],
                check=True, stdout=subprocess.DEVNULL, stderr=open(self.log + ".install", "w"))
        self.proc = subprocess.Popen([MARIADBD, f"--defaults-file={cnf}", "--user=root"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log + ".stderr", "a"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; log: {self.log}\n{self.tail()}")
            try:
                pymysql.connect(unix_socket=self.socket, user="root").close()
                break
            except pymysql.err.MySQLError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"{self.name} did not start in 60 s; log: {self.log}\n{self.tail()}")
        with self.socket_conn() as c:
            cur = c.cursor()
            cur.execute("SET sql_log_bin=0")
            # Only root@localhost (socket) and root@'%' (password) remain.
            cur.execute("SELECT host FROM mysql.user WHERE user='root' AND host NOT IN ('localhost', '%')")
            for (host,) in cur.fetchall():
                cur.execute("DROP USER 'root'@%s", (host,))
            cur.execute("CREATE USER IF NOT EXISTS 'root'@'%%' IDENTIFIED BY %s", (self.root_password,))
            cur.execute("ALTER USER 'root'@'%%' IDENTIFIED BY %s", (self.root_password,))
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION")
            cur.execute("CREATE USER IF NOT EXISTS 'repl'@'%%' IDENTIFIED BY %s", ("repl-pass",))
            cur.execute("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'")
        return self

    def tail(self, n=30):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def socket_conn(self):
        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)

    def tcp_conn(self):
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password=self.root_password,
                               autocommit=True)

    def sql(self, *statements):
        with self.socket_conn() as c:
            cur = c.cursor()
            rows = None
            for st in statements:
                if isinstance(st, tuple):
                    cur.execute(*st)
                else:
                    cur.execute(st)
                rows = cur.fetchall()
            return rows

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def replicate(replica, primary, delay=None):
    """Point ``replica`` at ``primary`` with GTID (the collection's own SQL)."""
    from sql_actions import ActionDialect
    version = replica.sql("SELECT VERSION()")[0][0]
    d = ActionDialect(version)
    stmt, args = d.change_source("127.0.0.1", primary.port, "repl", "repl-pass", delay=delay)
    replica.sql(d.stop_replica(), d.reset_replica_all(), "SET GLOBAL gtid_slave_pos=''",
                (stmt, args), d.start_replica(), "SET GLOBAL read_only=ON")
