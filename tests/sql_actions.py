"""SQL that only the tests use to act on replication (point a replica at a
source, reset it): kept out of the collection's plugins (start and stop are
there: primary_reseed uses them). The words per server come from the plugins'
Dialect, so there is still one table of them."""
from ansible_collections.stateful.mysql.plugins.module_utils.sql import Dialect


class ActionDialect(Dialect):
    """Dialect plus the statements that change replication (tests and drills)."""

    def reset_replica_all(self):
        return "RESET REPLICA ALL" if self._replica_words else "RESET SLAVE ALL"

    def change_source(self, host, port, user, password, delay=None, gtid=True):
        """Point a replica at its source. Returns ``(sql, args)`` for the driver
        to escape; the password travels only as a bound argument."""
        mysql_new = not self.server.is_mariadb and self.server.at_least(8, 0, 23)
        p = "SOURCE_" if mysql_new else "MASTER_"
        head = "CHANGE REPLICATION SOURCE TO " if mysql_new else "CHANGE MASTER TO "
        parts = [p + "HOST=%s", p + "PORT=%s", p + "USER=%s", p + "PASSWORD=%s"]
        args = [host, int(port), user, password]
        if gtid:
            if self.server.is_mariadb:
                parts.append("MASTER_USE_GTID=slave_pos")
            else:
                parts.append(p + "AUTO_POSITION=1")
        if mysql_new:
            # caching_sha2_password over a plain connection needs the key.
            parts.append("GET_SOURCE_PUBLIC_KEY=1")
        elif not self.server.is_mariadb and self.server.at_least(8, 0, 0):
            parts.append("GET_MASTER_PUBLIC_KEY=1")
        if delay is not None:
            parts.append(p + "DELAY=%s")
            args.append(int(delay))
        return head + ", ".join(parts), tuple(args)
