# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stateful.mysql.cluster_live: everything the role needs to know of a live
cluster, read in one step on the controller (a lookup starts no module: on a
2-core control node each module start costs about a second of CPU)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: cluster_live
short_description: The live objects of one MySQL/MariaDB cluster, read in one step
description:
  - Reads, through the Kubernetes API, the namespace, the StatefulSet, its ConfigMaps C(<name>-config)
    and C(<name>-state), the PersistentVolumeClaims of the cluster's labels, the credentials and TLS
    Secrets, whether the PodDisruptionBudget and NetworkPolicy exist, and whether pod C(<name>-0) is Ready.
  - A Namespace the user may not read (403) counts as there, as the API gives no other answer to
    a user allowed only inside the namespace.
  - The result holds Secret data (base64, as the API returns it). Set C(no_log) on the task that uses it.
  - Connects as the kubernetes.core modules do (C(K8S_AUTH_KUBECONFIG), C(KUBECONFIG), in-cluster).
options:
  name:
    description: The StatefulSet's name (C(mysql_cluster_name)).
    type: str
    required: true
  namespace:
    description: Its namespace.
    type: str
    required: true
  secrets:
    description: Names of the Secrets to read; a missing one is null in RV(_raw.secrets).
    type: list
    elements: str
    default: []
  selector:
    description: Label selector of the cluster's PVCs, as C(key=value) strings.
    type: list
    elements: str
    default: []
  kubeconfig:
    description: Path of a kubeconfig; defaults to C(K8S_AUTH_KUBECONFIG), then C(KUBECONFIG).
    type: str
  context:
    description: Context of the kubeconfig; defaults to C(K8S_AUTH_CONTEXT).
    type: str
"""

EXAMPLES = """
- name: Read the live cluster
  ansible.builtin.set_fact:
    live: "{{ lookup('stateful.mysql.cluster_live', name='mysql', namespace='mysql', secrets=['mysql-credentials']) }}"
  no_log: true
"""

RETURN = """
_raw:
  description: One dict per lookup.
  type: list
  elements: dict
  contains:
    namespace:
      description: Whether the namespace is there (true when it cannot be read).
      type: bool
    namespace_labels:
      description: The namespace's labels (empty when it is missing or cannot be read), where Pod Security's are.
      type: dict
    statefulset:
      description: The StatefulSet as the API returns it, or an empty dict.
      type: dict
    config:
      description: The data of ConfigMap C(<name>-config), or an empty dict.
      type: dict
    state:
      description: The data of ConfigMap C(<name>-state), or null when it does not exist.
      type: dict
    claims:
      description: Names of the PVCs of the selector, sorted.
      type: list
    secrets:
      description: Each Secret's data by name, null when it does not exist.
      type: dict
    secrets_last_applied:
      description:
        - Names of the read Secrets that carry C(kubectl.kubernetes.io/last-applied-configuration), a
          copy of their data that an earlier C(apply) left (and C(kubectl describe) prints).
      type: list
    pdb:
      description: Whether PodDisruptionBudget C(<name>) exists.
      type: bool
    network_policy:
      description: Whether NetworkPolicy C(<name>) exists.
      type: bool
    primary_ready:
      description: Whether pod C(<name>-0) exists and is Ready.
      type: bool
    backup_cronjob:
      description: Whether CronJob C(<name>-backup) exists.
      type: bool
"""

import os

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

from ansible_collections.stateful.mysql.plugins.module_utils.k8s import (
    KUBERNETES_IMPORT_ERROR, ApiException, K8s, K8sError, api_error_text,
)


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _absent_is_none(call):
    """The object, or None on 404; anything else is an error worth stopping for."""
    try:
        return call()
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def read_cluster(k8s, name, namespace, secrets=(), selector=()):
    """The live cluster as plain dicts (the API's own field names)."""
    from kubernetes import client as k8s_client

    ser = k8s.api_client.sanitize_for_serialization
    out = dict(namespace=True, namespace_labels={}, statefulset={}, config={}, state=None, claims=[],
               secrets=dict((s, None) for s in secrets), secrets_last_applied=[], pdb=False, network_policy=False, primary_ready=False,
               backup_cronjob=False)
    try:
        ns = _absent_is_none(lambda: k8s.core.read_namespace(namespace))
        out["namespace"] = ns is not None
        if ns is not None:
            out["namespace_labels"] = dict(ns.metadata.labels or {})
    except ApiException as e:
        if e.status != 403:
            raise
    if not out["namespace"]:
        return out
    sts = _absent_is_none(lambda: k8s.apps.read_namespaced_stateful_set(name, namespace))
    out["statefulset"] = ser(sts) if sts is not None else {}
    for key, cm_name in (("config", name + "-config"), ("state", name + "-state")):
        cm = _absent_is_none(lambda: k8s.core.read_namespaced_config_map(cm_name, namespace))
        if cm is not None:
            out[key] = dict(cm.data or {})
    claims = k8s.core.list_namespaced_persistent_volume_claim(namespace, label_selector=",".join(selector))
    out["claims"] = sorted(c.metadata.name for c in claims.items)
    for secret in secrets:
        s = _absent_is_none(lambda: k8s.core.read_namespaced_secret(secret, namespace))
        if s is not None:
            out["secrets"][secret] = dict(s.data or {})
            if LAST_APPLIED in (s.metadata.annotations or {}):
                out["secrets_last_applied"].append(secret)
    policy = k8s_client.PolicyV1Api(k8s.api_client)
    net = k8s_client.NetworkingV1Api(k8s.api_client)
    out["pdb"] = _absent_is_none(lambda: policy.read_namespaced_pod_disruption_budget(name, namespace)) is not None
    out["network_policy"] = _absent_is_none(lambda: net.read_namespaced_network_policy(name, namespace)) is not None
    batch = k8s_client.BatchV1Api(k8s.api_client)
    out["backup_cronjob"] = _absent_is_none(lambda: batch.read_namespaced_cron_job(name + "-backup", namespace)) is not None
    pod = _absent_is_none(lambda: k8s.core.read_namespaced_pod(name + "-0", namespace))
    if pod is not None and pod.status is not None:
        out["primary_ready"] = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    return out


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if KUBERNETES_IMPORT_ERROR:
            raise AnsibleError("stateful.mysql.cluster_live needs the kubernetes Python library")
        params = dict(
            kubeconfig=self.get_option("kubeconfig") or os.environ.get("K8S_AUTH_KUBECONFIG"),
            context=self.get_option("context") or os.environ.get("K8S_AUTH_CONTEXT"),
            host=os.environ.get("K8S_AUTH_HOST"),
            api_key=os.environ.get("K8S_AUTH_API_KEY"),
            ca_cert=os.environ.get("K8S_AUTH_SSL_CA_CERT"),
        )
        verify = os.environ.get("K8S_AUTH_VERIFY_SSL")
        if verify is not None:
            params["validate_certs"] = verify.lower() in ("1", "true", "yes", "on")
        name, namespace = self.get_option("name"), self.get_option("namespace")
        try:
            k8s = K8s(params)
        except K8sError as e:
            raise AnsibleError(str(e))
        try:
            return [read_cluster(k8s, name, namespace, self.get_option("secrets"), self.get_option("selector"))]
        except ApiException as e:
            raise AnsibleError("cannot read cluster %s/%s: %s" % (namespace, name, api_error_text(e)))
        finally:
            k8s.close()
