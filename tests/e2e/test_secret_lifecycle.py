"""A cluster's Secrets over its life (issue 27), on the local Kubernetes:

- no Secret keeps a copy of its data in an annotation (a run cleans the
  last-applied copy an older apply left), and no annotation of any object
  in the namespace holds a password or the private key;
- a live cluster whose credentials and TLS Secrets are deleted is refused
  by site.yml, scale.yml and verify.yml before any change, and the restore
  the message gives (from a running pod's mounted copy) brings back Secrets
  the servers accept: every pod restarted afterwards replicates again;
- verify.yml fails on an expired certificate, naming it;
- site.yml refuses the root volume-owner step in a namespace that enforces
  Pod Security restricted, and fails at once, quoting the API, when the API
  refuses to create the pods (a quota).

Each cluster has generated passwords, as a user's first deploy has."""
import base64
import datetime
import glob
import json
import os
import re
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client
from kubernetes.client.rest import ApiException

from kube import (CACHE, KUBECONFIG, POD_SECURITY_BASELINE, PREFIX, ROOT, Cluster, api, create_namespace,
                  delete_namespace, deploy_args, replicating, run_playbook, wait_until)

SITE, SCALE, VERIFY = (os.path.join(ROOT, p) for p in ("site.yml", "scale.yml", "verify.yml"))
NO_PASSWORDS = {"mysql_cluster_root_password": "", "mysql_cluster_replication_password": "",
                "mysql_cluster_clone_password": ""}
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NAME = "sl"
FLAVORS = [pytest.param(("mysql", "9.7"), id="mysql-9.7"), pytest.param(("mariadb", "11.8"), id="mariadb-11.8")]


def flat(out):
    return " ".join(out.split())


def kubectl():
    found = sorted(glob.glob(os.path.join(CACHE, "bin", "kubernetes-*", "kubectl")))
    assert found, "no kubectl under %s/bin (make cluster-up builds it)" % CACHE
    return found[-1]


@pytest.fixture(scope="module", params=FLAVORS)
def own_cluster(request, kube_ready, tmp_path_factory):
    """Two pods with generated passwords; each test leaves it replicating."""
    flavor, version = request.param
    ns = "%s-secrets-%s" % (PREFIX, flavor)
    delete_namespace(ns)
    create_namespace(ns, POD_SECURITY_BASELINE)
    args = deploy_args(flavor, version, NAME, ns, str(tmp_path_factory.mktemp(flavor)),
                       dict(NO_PASSWORDS, mysql_cluster_replicas=2))
    run_playbook(SITE, *args)
    yield Cluster(NAME, ns, flavor, version), args
    delete_namespace(ns, wait=False)


def secret_values(c):
    """Every value of the cluster's Secrets, decoded (the generated passwords, the private key)."""
    out = {}
    for s in ("-credentials", "-tls"):
        data = c.core.read_namespaced_secret(c.name + s, c.namespace).data
        out.update({"%s%s/%s" % (c.name, s, k): base64.b64decode(v).decode() for k, v in data.items()})
    return out


def annotations_everywhere(c):
    """(object, key, value) of every annotation of every object in the namespace."""
    core, apps = c.core, c.apps
    policy, net = client.PolicyV1Api(), client.NetworkingV1Api()
    lists = [core.list_namespaced_secret, core.list_namespaced_config_map, core.list_namespaced_service,
             core.list_namespaced_pod, core.list_namespaced_persistent_volume_claim, core.list_namespaced_endpoints,
             core.list_namespaced_service_account, apps.list_namespaced_stateful_set,
             apps.list_namespaced_controller_revision, policy.list_namespaced_pod_disruption_budget,
             net.list_namespaced_network_policy]
    out = []
    objects = [core.read_namespace(c.namespace)]
    for lister in lists:
        objects += lister(c.namespace).items
    for obj in objects:
        for key, value in (obj.metadata.annotations or {}).items():
            out.append(("%s %s" % (obj.kind or type(obj).__name__, obj.metadata.name), key, value))
    # The StatefulSet's pod template carries annotations of its own.
    for sts in apps.list_namespaced_stateful_set(c.namespace).items:
        for key, value in (sts.spec.template.metadata.annotations or {}).items():
            out.append(("StatefulSet %s template" % sts.metadata.name, key, value))
    return out


@pytest.mark.landing("mariadb-11.8")
def test_secrets_keep_no_copy_in_annotations_and_a_lost_secret_is_refused(own_cluster):
    c, args = own_cluster
    values = secret_values(c)
    assert len(values) == 6, sorted(values)

    # What an older version left: Secrets applied client-side, their data in the annotation.
    for s in ("-credentials", "-tls"):
        live = c.core.read_namespaced_secret(c.name + s, c.namespace)
        copy = {"apiVersion": "v1", "kind": "Secret", "data": live.data,
                "metadata": {"name": live.metadata.name, "namespace": c.namespace}}
        c.core.patch_namespaced_secret(live.metadata.name, c.namespace,
                                       {"metadata": {"annotations": {LAST_APPLIED: json.dumps(copy)}}})
    out, recap = run_playbook(SITE, *args)
    assert recap["changed"] >= 1, recap
    for s in ("-credentials", "-tls"):
        meta = c.core.read_namespaced_secret(c.name + s, c.namespace).metadata
        assert LAST_APPLIED not in (meta.annotations or {}), (meta.name, sorted(meta.annotations or {}))
    assert secret_values(c) == values, "the rewrite changed a Secret's data"
    out, recap = run_playbook(SITE, *args)
    assert recap["changed"] == 0, recap

    # No annotation anywhere holds a password or the key, plain or base64.
    found = annotations_everywhere(c)
    assert any(key == LAST_APPLIED for _, key, _ in found), "the scan saw no last-applied annotation at all"
    for what, secret in values.items():
        lines = [line for line in secret.splitlines() if len(line) > 16] if "BEGIN" in secret else [secret]
        for needle in lines + [base64.b64encode(secret.encode()).decode()]:
            hits = [(obj, key) for obj, key, value in found if needle in value]
            assert not hits, "%s appears in the annotations %s" % (what, hits)

    # Both Secrets deleted on the live cluster: every playbook refuses before any change.
    sts_version = c.apps.read_namespaced_stateful_set(c.name, c.namespace).metadata.resource_version
    for s in ("-credentials", "-tls"):
        c.core.delete_namespaced_secret(c.name + s, c.namespace)
    for playbook, extra in ((SITE, ()), (SCALE, ("-e", "replicas=3")), (VERIFY, ())):
        out, recap = run_playbook(playbook, *args, *extra, check=False)
        text = flat(out)
        assert recap.get("failed") == 1, (playbook, text[-3000:])
        assert ("Secrets %s-credentials and %s-tls are missing" % (c.name, c.name)) in text, (playbook, text[-3000:])
        assert "TASK [stateful.mysql.mysql_cluster : Refuse a live cluster whose credentials or TLS Secret" in out
    names = [s.metadata.name for s in c.core.list_namespaced_secret(c.namespace).items]
    assert c.name + "-credentials" not in names and c.name + "-tls" not in names, names
    live = c.apps.read_namespaced_stateful_set(c.name, c.namespace)
    assert live.metadata.resource_version == sts_version and live.spec.replicas == 2

    # The restore the message gives, run as it stands: the values never on a command line.
    # (The message shows twice: in the error and in the result's msg.)
    recipes = list(dict.fromkeys(re.findall(r'\(umask 077; .*?rm -r "\$d"\)', text)))
    assert len(recipes) == 2, text[-3000:]
    env = dict(os.environ, KUBECONFIG=KUBECONFIG, PATH=os.path.dirname(kubectl()) + os.pathsep + os.environ["PATH"])
    for recipe in recipes:
        proc = subprocess.run(["bash", "-c", recipe], env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (recipe, proc.stdout, proc.stderr)
    assert secret_values(c) == values, "the restored Secrets differ"
    out, recap = run_playbook(SITE, *args)
    assert recap["changed"] == 0, recap

    # Every server restarts on the restored Secrets and replicates again.
    for ordinal in (1, 0):
        uid = c.core.read_namespaced_pod(c.pod(ordinal), c.namespace).metadata.uid
        c.core.delete_namespaced_pod(c.pod(ordinal), c.namespace)
        wait_until(lambda: _new_pod(c, ordinal, uid), 120, "%s recreated" % c.pod(ordinal))
    c.wait_ready(2, timeout=300)
    wait_until(lambda: replicating(c, [c.pod(1)]), 120, "%s replicating" % c.pod(1))
    out, recap = run_playbook(VERIFY, *args)
    assert "marker" in out and recap["failed"] == 0


def _new_pod(c, ordinal, old_uid):
    try:
        return c.core.read_namespaced_pod(c.pod(ordinal), c.namespace).metadata.uid != old_uid
    except ApiException as e:
        if e.status == 404:
            return False
        raise


def _expired_pair(names):
    """A CA and a certificate for these names whose validity ended yesterday."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=30))
          .not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = lambda cert: cert.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return {"ca.crt": pem(ca), "tls.crt": pem(leaf), "tls.key": key_pem}


@pytest.mark.only_flavors("mariadb-11.8")
def test_verify_fails_on_an_expired_certificate(own_cluster):
    """verify.yml shows each certificate's expiry; one that has expired fails
    it, named, before any connection. (The cluster's last test: its Secret
    no longer matches what the servers run.)"""
    c, args = own_cluster
    out, _ = run_playbook(VERIFY, *args)
    text = flat(out)
    assert re.search(r"certificate tls\.crt of Secret %s-tls: CN=[^,]+, expires 20\d\d-\d\d-\d\dT[0-9:]+Z \(\d+ days\)"
                     % c.name, text), text[-3000:]
    pair = _expired_pair(["*.%s.%s.svc" % (c.name, c.namespace)])
    c.core.patch_namespaced_secret(c.name + "-tls", c.namespace, {"data": {
        k: base64.b64encode(v.encode()).decode() for k, v in pair.items()}})
    out, recap = run_playbook(VERIFY, *args, check=False)
    text = flat(out)
    assert recap.get("failed") == 1, text[-3000:]
    assert re.search(r"Secret %s-tls \(namespace %s\) holds an expired certificate: tls\.crt CN=[^ ]+ expired "
                     r"20\d\d-\d\d-\d\dT" % (c.name, c.namespace), text), text[-3000:]
    assert "Write a marker" not in out


def test_restricted_namespace_and_refused_pods_fail_at_once(kube_ready, tmp_path):
    """Pod Security restricted with the root volume-owner step: refused before
    anything is applied. Pods the API refuses (a quota of 0 pods): site.yml
    fails within 30 s of the StatefulSet's creation, quoting the API."""
    core, apps = api()
    restricted, quota = "%s-secrets-restricted" % PREFIX, "%s-secrets-quota" % PREFIX
    for ns in (restricted, quota):
        delete_namespace(ns)
    create_namespace(restricted, {"pod-security.kubernetes.io/enforce": "restricted",
                                  "pod-security.kubernetes.io/enforce-version": "latest"})
    create_namespace(quota, POD_SECURITY_BASELINE)
    core.create_namespaced_resource_quota(quota, client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="no-pods"), spec=client.V1ResourceQuotaSpec(hard={"pods": "0"})))
    try:
        out, recap = run_playbook(SITE, *deploy_args("mariadb", "11.8", NAME, restricted, str(tmp_path), NO_PASSWORDS),
                                  check=False)
        text = flat(out)
        assert recap.get("failed") == 1, text[-3000:]
        assert ("Namespace '%s' enforces Pod Security 'restricted'" % restricted) in text, text[-3000:]
        assert "mysql_cluster_volume_owner_init: false" in text, text[-3000:]
        assert apps.list_namespaced_stateful_set(restricted).items == []
        assert core.list_namespaced_secret(restricted).items == [] or all(
            s.type == "kubernetes.io/service-account-token" for s in core.list_namespaced_secret(restricted).items)

        started = time.time()
        out, recap = run_playbook(SITE, *deploy_args("mariadb", "11.8", NAME, quota, str(tmp_path), NO_PASSWORDS),
                                  check=False)
        ended = time.time()
        text = flat(out)
        assert recap.get("failed") == 1, text[-3000:]
        assert "the API refuses to create its pods, so waiting cannot help" in text, text[-3000:]
        assert 'is forbidden: exceeded quota: no-pods' in text, text[-3000:]
        created = apps.read_namespaced_stateful_set(NAME, quota).metadata.creation_timestamp.timestamp()
        assert ended - created < 30, "failed %.1f s after the StatefulSet was created" % (ended - created)
        assert ended - started < 90, ended - started
    finally:
        for ns in (restricted, quota):
            delete_namespace(ns, wait=False)
