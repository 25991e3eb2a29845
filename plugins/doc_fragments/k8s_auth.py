# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The same connection options kubernetes.core modules take, each falling
    # back to its K8S_AUTH_* variable. Argument spec: module_utils/args.py.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or a kubeconfig given as a dictionary.
      - Several files can be joined with C(:) as in E(KUBECONFIG).
      - Falls back to E(K8S_AUTH_KUBECONFIG). With neither this nor O(host), the client
        reads E(KUBECONFIG) or C(~/.kube/config), and uses the in-cluster service
        account when no file exists.
    type: raw
  context:
    description:
      - The name of a context in the kubeconfig. Falls back to E(K8S_AUTH_CONTEXT).
    type: str
  host:
    description:
      - URL of the Kubernetes API server. Falls back to E(K8S_AUTH_HOST).
    type: str
  api_key:
    description:
      - Bearer token for the API server. Falls back to E(K8S_AUTH_API_KEY).
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. Falls back to E(K8S_AUTH_VERIFY_SSL).
      - When not set, the kubeconfig decides.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to the CA certificate of the API server. Falls back to E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate for the API server. Falls back to E(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the key of O(client_cert). Falls back to E(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
requirements:
  - kubernetes >= 24.2.0 (Python library)
"""
