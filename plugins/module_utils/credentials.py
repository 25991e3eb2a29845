# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Password rotation without a gap: the plan kept in the credentials Secret
and the statements of each step, per flavor (credentials_rotate).

A rotation goes through three states, each written to the Secret before the
servers see it, so that a run stopped anywhere is finished by the next:

- ``idle``: the Secret holds the passwords in use.
- ``adding``: the Secret also holds ``rotation-next-<key>``; every server is
  made to accept the next password as well as the current one.
- ``switched``: the Secret holds the new passwords and
  ``rotation-previous-<key>``; the pods' option files and the replicas'
  stored replication password move to the new ones, then every server
  forgets the previous one and the ``rotation-previous-`` keys go.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import secrets
import string

from ansible_collections.stateful.mysql.plugins.module_utils.accounts import AccountError

PASSWORD_KEYS = ("root-password", "replication-password", "clone-password")
NEXT_PREFIX = "rotation-next-"
PREVIOUS_PREFIX = "rotation-previous-"
IDLE, ADDING, SWITCHED = "idle", "adding", "switched"
# Password plugins whose MariaDB authentication chain can hold two passwords.
MARIADB_PASSWORD_PLUGINS = ("mysql_native_password", "ed25519")
_ALPHABET = string.ascii_letters + string.digits


class RotationError(AccountError):
    pass


def generate_password(length=32):
    return "".join(secrets.choice(_ALPHABET) for i in range(length))


def rotation_state(data, keys=None):
    """``(state, old, new)`` from the Secret's decoded data.

    ``keys`` are the passwords a new rotation would change; an unfinished
    rotation keeps its own (the keys it wrote), whatever is asked now.
    """
    nxt = dict((k[len(NEXT_PREFIX):], v) for k, v in data.items() if k.startswith(NEXT_PREFIX))
    prev = dict((k[len(PREVIOUS_PREFIX):], v) for k, v in data.items() if k.startswith(PREVIOUS_PREFIX))
    if nxt and prev:
        raise RotationError("the Secret holds both %s* and %s* keys: it was edited by hand during a rotation;"
                            " keep the keys of one step only" % (NEXT_PREFIX, PREVIOUS_PREFIX))
    unknown = sorted((set(nxt) | set(prev)) - set(PASSWORD_KEYS))
    if unknown:
        raise RotationError("the Secret holds rotation keys for unknown passwords: %s" % ", ".join(unknown))
    missing = [k for k in PASSWORD_KEYS if not data.get(k)]
    if missing:
        raise RotationError("the Secret lacks %s" % ", ".join(missing))
    if nxt:
        return ADDING, dict((k, data[k]) for k in nxt), nxt
    if prev:
        return SWITCHED, prev, dict((k, data[k]) for k in prev)
    return IDLE, dict((k, data[k]) for k in (keys or ())), {}


def secret_data(data, state, old, new):
    """The Secret's decoded data for ``state`` (everything not ours is kept)."""
    out = dict((k, v) for k, v in data.items()
               if not k.startswith(NEXT_PREFIX) and not k.startswith(PREVIOUS_PREFIX))
    if state == ADDING:
        out.update(dict((NEXT_PREFIX + k, v) for k, v in new.items()))
        out.update(old)
    elif state == SWITCHED:
        out.update(new)
        out.update(dict((PREVIOUS_PREFIX + k, v) for k, v in old.items()))
    else:
        out.update(new)
    return out


def refresh_input(data):
    """What credentials.sh reads on stdin: a count, then ``KEY SHA256`` per
    password, so that it can tell when the kubelet has updated its mounted
    copy without a password crossing the exec."""
    lines = ["%s %s" % (k, hashlib.sha256(data[k].encode("utf-8")).hexdigest()) for k in PASSWORD_KEYS]
    return "%d\n%s\n" % (len(lines), "\n".join(lines))


def account_users(keys, replication_user, donor_user):
    """The account names each password belongs to."""
    users = {"root-password": "root", "replication-password": replication_user, "clone-password": donor_user}
    return dict((k, users[k]) for k in keys)


def dual_statements(dialect, user, host, old, new, plugin=None):
    """``(sql, args)`` statements after which the account takes ``new`` and ``old``.

    They hold whatever state the account is in (a rotation stopped half-way is
    done again): MySQL sets the current password to ``old``, which keeps the
    secondary one, then makes ``new`` current and ``old`` secondary (RETAIN
    CURRENT PASSWORD, MySQL 8.0.14+). MariaDB has no secondary password but
    an authentication chain: either password passes.
    """
    if dialect.server.is_mariadb:
        plugin = _mariadb_plugin(plugin)
        return [("ALTER USER %%s@%%s IDENTIFIED VIA %s USING PASSWORD(%%s) OR %s USING PASSWORD(%%s)"
                 % (plugin, plugin), (user, host, new, old))]
    if not dialect.server.at_least(8, 0, 14):
        raise RotationError("MySQL %s has no dual passwords (8.0.14+): a rotation would lock out the pods between"
                            " two steps; upgrade first" % dialect.server.raw)
    return [("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, old)),
            ("ALTER USER %s@%s IDENTIFIED BY %s RETAIN CURRENT PASSWORD", (user, host, new))]


def discard_statements(dialect, user, host, new, plugin=None):
    """``(sql, args)`` statements after which the account takes ``new`` alone."""
    if dialect.server.is_mariadb:
        plugin = _mariadb_plugin(plugin)
        return [("ALTER USER %%s@%%s IDENTIFIED VIA %s USING PASSWORD(%%s)" % plugin, (user, host, new))]
    # Sets nothing but the discard: a current password other than new (a
    # stopped run's second step) is set first.
    return [("ALTER USER %s@%s IDENTIFIED BY %s RETAIN CURRENT PASSWORD", (user, host, new)),
            ("ALTER USER %s@%s DISCARD OLD PASSWORD", (user, host))]


def _mariadb_plugin(plugin):
    plugin = plugin or "mysql_native_password"
    if plugin not in MARIADB_PASSWORD_PLUGINS:
        raise RotationError("the account authenticates with %s, not a password plugin (%s): rotate it by hand"
                            % (plugin, ", ".join(MARIADB_PASSWORD_PLUGINS)))
    return plugin
