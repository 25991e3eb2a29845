# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # How the modules reach and log in to each server of a StatefulSet.
    # Argument spec: module_utils/args.py MYSQL_LOGIN_ARG_SPEC.
    DOCUMENTATION = r"""
options:
  name:
    description:
      - Name of the StatefulSet. Its pods are C(<name>-<ordinal>); ordinal 0 is the primary.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the StatefulSet.
    type: str
    default: default
  login_user:
    description:
      - MySQL/MariaDB user the module logs in as.
    type: str
    default: root
  login_password:
    description:
      - Password of O(login_user). Overrides O(login_password_secret).
      - Never logged nor returned.
    type: str
  login_password_secret:
    description:
      - Name of a Secret in O(namespace) holding the password of O(login_user), read
        through the Kubernetes API so that no password passes through Ansible variables.
      - Defaults to C(<name>-credentials), the Secret the C(stateful.mysql.mysql_cluster)
        role creates. Used when O(login_password) is not given.
    type: str
  login_password_secret_key:
    description:
      - Key of the password in O(login_password_secret).
    type: str
    default: root-password
  connect_timeout:
    description:
      - Seconds to wait for each server connection (and each query's reply).
    type: int
    default: 10
  connection:
    description:
      - How the control node reaches each server.
      - V(port_forward) opens a Kubernetes API port-forward to port 3306 of each pod
        C(<name>-<ordinal>), so only a kubeconfig is needed.
      - V(direct) opens TCP connections, for control nodes inside the pod network
        or for servers outside Kubernetes. The servers are O(hosts) when given,
        otherwise the pods' DNS names C(<name>-<ordinal>.<name>.<namespace>.svc.<cluster_domain>)
        for each replica the StatefulSet declares.
      - Either way, when the Kubernetes API is used and Secret C(<name>-tls) exists, each server known as
        a pod (every one through the port-forward or at its DNS name, an entry of O(hosts) whose name is
        C(<name>-<ordinal>)) is reached over TLS, its certificate verified against that Secret's C(ca.crt)
        and the name C(<pod>.<name>.<namespace>.svc).
    type: str
    default: port_forward
    choices: [port_forward, direct]
  hosts:
    description:
      - With O(connection=direct), the servers in ordinal order; the first entry is
        the primary, the others its replicas. No Kubernetes API is needed then, provided
        O(login_password) is given.
      - Ignored with O(connection=port_forward).
    type: list
    elements: dict
    suboptions:
      host:
        description: Address or DNS name of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 3306
      name:
        description:
          - Name reported for this server; defaults to C(<name>-<ordinal>).
          - A pod's name (C(<name>-<ordinal>)) has the server's certificate checked for that pod when the cluster
            CA is read (see O(connection)).
        type: str
  cluster_domain:
    description:
      - DNS domain of the cluster, for O(connection=direct) without O(hosts).
    type: str
    default: cluster.local
requirements:
  - PyMySQL >= 1.0 (Python library)
"""
