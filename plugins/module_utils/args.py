# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by the modules; documented once in doc_fragments."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import env_fallback

# plugins/doc_fragments/k8s_auth.py documents these.
K8S_AUTH_ARG_SPEC = dict(
    kubeconfig=dict(type="raw", no_log=False, fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
    context=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
    host=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_HOST"])),
    api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["K8S_AUTH_API_KEY"])),
    validate_certs=dict(type="bool", aliases=["verify_ssl"], fallback=(env_fallback, ["K8S_AUTH_VERIFY_SSL"])),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"], fallback=(env_fallback, ["K8S_AUTH_SSL_CA_CERT"])),
    client_cert=dict(type="path", aliases=["cert_file"], fallback=(env_fallback, ["K8S_AUTH_CERT_FILE"])),
    client_key=dict(type="path", aliases=["key_file"], no_log=False, fallback=(env_fallback, ["K8S_AUTH_KEY_FILE"])),
)

# plugins/doc_fragments/mysql_login.py documents these.
MYSQL_LOGIN_ARG_SPEC = dict(
    login_user=dict(type="str", default="root"),
    login_password=dict(type="str", no_log=True),
    login_password_secret=dict(type="str", no_log=False),
    login_password_secret_key=dict(type="str", default="root-password", no_log=False),
    connect_timeout=dict(type="int", default=10),
    connection=dict(type="str", default="port_forward", choices=["port_forward", "direct"]),
    hosts=dict(type="list", elements="dict", options=dict(
        host=dict(type="str", required=True),
        port=dict(type="int", default=3306),
        name=dict(type="str"),
    )),
    cluster_domain=dict(type="str", default="cluster.local"),
)

STATEFULSET_ARG_SPEC = dict(
    name=dict(type="str", required=True),
    namespace=dict(type="str", default="default"),
)


def merge_specs(*specs):
    out = {}
    for spec in specs:
        out.update(spec)
    return out
