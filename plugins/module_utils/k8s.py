# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes client, built from the kubernetes.core connection options."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import traceback

KUBERNETES_IMPORT_ERROR = None
try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException
except ImportError:  # pragma: no cover - reported by the module
    k8s_client = k8s_config = None
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

    class ApiException(Exception):
        status = None

    class ConfigException(Exception):
        pass


class K8sError(Exception):
    pass


def build_configuration(params):
    """A ``kubernetes.client.Configuration`` from the module parameters."""
    if k8s_client is None:
        raise K8sError("the kubernetes Python library is required")
    cfg = k8s_client.Configuration()
    kubeconfig = params.get("kubeconfig")
    context = params.get("context")
    host = params.get("host")
    api_key = params.get("api_key")
    try:
        if isinstance(kubeconfig, dict):
            k8s_config.load_kube_config_from_dict(kubeconfig, context=context, client_configuration=cfg)
        elif kubeconfig:
            k8s_config.load_kube_config(config_file=os.path.expanduser(str(kubeconfig)), context=context,
                                        client_configuration=cfg)
        elif not host:
            default = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
            if any(os.path.exists(p) for p in default.split(os.pathsep) if p):
                k8s_config.load_kube_config(context=context, client_configuration=cfg)
            else:
                k8s_config.load_incluster_config(client_configuration=cfg)
    except (ConfigException, OSError, ValueError) as e:
        raise K8sError("cannot load the Kubernetes configuration: %s" % e)
    if host:
        cfg.host = host
    if api_key:
        cfg.api_key = {"authorization": "Bearer %s" % api_key}
    if params.get("validate_certs") is not None:
        cfg.verify_ssl = params["validate_certs"]
    if params.get("ca_cert"):
        cfg.ssl_ca_cert = params["ca_cert"]
    if params.get("client_cert"):
        cfg.cert_file = params["client_cert"]
    if params.get("client_key"):
        cfg.key_file = params["client_key"]
    return cfg


class K8s(object):
    """The few API groups the modules use, from one ApiClient."""

    def __init__(self, params):
        self.configuration = build_configuration(params)
        self.api_client = k8s_client.ApiClient(self.configuration)
        self.core = k8s_client.CoreV1Api(self.api_client)
        self.apps = k8s_client.AppsV1Api(self.api_client)

    def read_statefulset(self, name, namespace):
        """The StatefulSet, or None when it does not exist."""
        try:
            return self.apps.read_namespaced_stateful_set(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def read_secret_value(self, name, namespace, key):
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as e:
            if e.status == 404:
                raise K8sError("Secret %s/%s not found: give login_password or login_password_secret"
                               % (namespace, name))
            raise K8sError("cannot read Secret %s/%s: %s" % (namespace, name, e.reason))
        data = secret.data or {}
        if key not in data:
            raise K8sError("Secret %s/%s has no key %r (keys: %s)" % (namespace, name, key, ", ".join(sorted(data))))
        return base64.b64decode(data[key]).decode("utf-8")

    def close(self):
        try:
            self.api_client.close()
        except Exception:  # pragma: no cover - best effort
            pass


def api_error_text(exc):
    """A short text for an ApiException (status and the API's message)."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or str(exc)
    body = getattr(exc, "body", None)
    if body:
        try:
            import json
            reason = json.loads(body).get("message") or reason
        except Exception:
            pass
    return "%s %s" % (status, reason) if status else str(reason)
