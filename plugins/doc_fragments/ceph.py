# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by the Ceph modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  cluster:
    description:
      - Name of the Ceph cluster, passed as C(--cluster).
      - Selects C(/etc/ceph/<cluster>.conf) and the default keyring names when I(conf) and I(keyring) are not given.
    type: str
    default: ceph
  conf:
    description:
      - Path of the cluster's C(ceph.conf) on the target host, passed as C(--conf).
      - The module fails before calling Ceph when the file does not exist.
    type: path
  keyring:
    description:
      - Path of the keyring holding the key of I(user), passed as C(--keyring).
      - The key itself is never put on a command line.
      - The module fails before calling Ceph when the file does not exist.
    type: path
  user:
    description:
      - Ceph entity the module authenticates as; C(client.admin) is passed as C(--id admin).
      - It needs C(mon 'allow *') (or equivalent) to manage pools and auth entities.
    type: str
    default: client.admin
  timeout:
    description:
      - Seconds to wait for the monitors. Passed to the ceph CLI as C(--connect-timeout)
        (and as the mount/operation timeouts to rbd), and enforced on every command by running it under
        C(timeout) for I(timeout) plus 15 seconds (killed 5 seconds later if it ignores the stop signal).
    type: int
    default: 30
requirements:
  - The C(ceph) and C(rbd) command-line tools (Debian/Ubuntu package C(ceph-common)) on the target host.
  - The C(timeout) command (GNU coreutils) on the target host.
notes:
  - Commands run are returned in C(commands), keys are never shown there.
"""
