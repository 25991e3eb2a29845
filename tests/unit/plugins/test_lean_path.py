"""The pieces of the lean control path that need no cluster: which Secrets a
rerun writes, how k8s_apply lifts per-object diffs, when a rollout is done,
and the certificates tls_certificates makes (the deploys in tests/e2e prove
them against a real API server and real servers)."""
import datetime
import ssl
import types

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.stateful.mysql.plugins.action.k8s_apply import lift
from ansible_collections.stateful.mysql.plugins.filter.secrets_to_write import secrets_to_write
from ansible_collections.stateful.mysql.plugins.module_utils.replication import statefulset_rollout_problems
from ansible_collections.stateful.mysql.plugins.modules.tls_certificates import make_certificates


def secret(name, **data):
    return {"kind": "Secret", "metadata": {"name": name}, "data": data}


def test_only_new_or_changed_secrets_are_written():
    creds, tls = secret("m-credentials", a="eA=="), secret("m-tls", c="eQ==")
    assert secrets_to_write([creds, tls], {"m-credentials": {"a": "eA=="}, "m-tls": {"c": "eQ=="}}) == []
    assert secrets_to_write([creds, tls], {"m-credentials": {"a": "eg=="}, "m-tls": {"c": "eQ=="}}) == [creds]
    assert secrets_to_write([creds, tls], {"m-credentials": None, "m-tls": None}) == [creds, tls]


def test_k8s_apply_lifts_each_changed_objects_diff_under_its_name():
    defs = [{"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}},
            {"kind": "StatefulSet", "metadata": {"name": "s", "namespace": "n"}}]
    res = {"changed": True, "result": {"results": [
        {"changed": False, "method": "apply", "diff": {"before": {}, "after": {}}},
        {"changed": True, "method": "apply", "diff": {"before": {"spec": {"replicas": 3}}, "after": {"spec": {"replicas": 4}}}}]}}
    objects, diffs = lift(defs, res)
    assert [o["changed"] for o in objects] == [False, True]
    assert len(diffs) == 1 and diffs[0]["before_header"] == "StatefulSet n/s"
    assert diffs[0]["after"] == {"spec": {"replicas": 4}}
    # One object: kubernetes.core returns its result at the top.
    one = {"changed": True, "method": "create", "result": {"kind": "ConfigMap"},
           "diff": {"before": {}, "after": {"data": {"k": "v"}}}}
    objects, diffs = lift(defs[:1], one)
    assert objects == [{"object": "ConfigMap n/c", "changed": True, "method": "create"}] and len(diffs) == 1


def sts(replicas=3, generation=2, observed=2, ready=3, updated=3, current=3):
    ns = types.SimpleNamespace
    return ns(metadata=ns(name="m", namespace="n", generation=generation),
              spec=ns(replicas=replicas, volume_claim_templates=[ns(metadata=ns(name="data"))]),
              status=ns(observed_generation=observed, ready_replicas=ready, updated_replicas=updated, replicas=current))


@pytest.mark.parametrize("obj,claims,words", [
    (sts(), ["data-m-0", "data-m-1", "data-m-2", "data-other-5"], None),
    (sts(observed=1), [], "generation 2 not yet observed"),
    (sts(ready=2), [], "2 of 3 pods Ready"),
    (sts(updated=1), [], "1 of 3 pods updated"),
    (sts(replicas=2, ready=2, updated=2, current=3), [], "3 pods, 2 declared"),
    (sts(replicas=2, ready=2, updated=2, current=2), ["data-m-0", "data-m-1", "data-m-2"],
     "volumes of removed pods still there: data-m-2"),
])
def test_rollout_is_done_only_when_every_declared_pod_is_updated_and_ready(obj, claims, words):
    problems = statefulset_rollout_problems(obj, claims)
    assert (problems == []) if words is None else any(words in p for p in problems), problems


def test_certificates_chain_and_carry_what_strict_verification_needs(tmp_path):
    ca_pem, crt_pem, key_pem = make_certificates("m-ca", "m-peer", ["DNS:m-peer", "DNS:*.m.n.svc"], 30)
    ca, crt = x509.load_pem_x509_certificate(ca_pem.encode()), x509.load_pem_x509_certificate(crt_pem.encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).critical
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    crt.verify_directly_issued_by(ca)
    sans = crt.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sans == ["m-peer", "*.m.n.svc"]
    aki = crt.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert crt.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) > datetime.timedelta(days=29)
    assert "PRIVATE KEY" in key_pem and "PRIVATE KEY" not in ca_pem + crt_pem
    # Python's own TLS stack, strict X.509 (the default since 3.13), accepts the pair.
    (tmp_path / "crt.pem").write_text(crt_pem)
    (tmp_path / "key.pem").write_text(key_pem)
    (tmp_path / "ca.pem").write_text(ca_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "crt.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cafile=tmp_path / "ca.pem")
    client.verify_flags |= getattr(ssl, "VERIFY_X509_STRICT", 0)
    store = client.get_ca_certs()
    assert store and store[0]["subject"] == ((("commonName", "m-ca"),),)
    a, b = ssl.MemoryBIO(), ssl.MemoryBIO()
    c, d = ssl.MemoryBIO(), ssl.MemoryBIO()
    cli = client.wrap_bio(a, b, server_hostname="m-0.m.n.svc")
    srv = server.wrap_bio(c, d, server_side=True)
    for _round in range(10):  # drive the handshake by hand, in memory
        for side in (cli, srv):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        c.write(b.read())
        a.write(d.read())
    assert cli.getpeercert()["subject"] == ((("commonName", "m-peer"),),)
    assert isinstance(x509.load_pem_x509_certificate(crt_pem.encode()).public_key(), ec.EllipticCurvePublicKey)


def test_certificates_refuse_a_name_that_is_not_dns():
    with pytest.raises(ValueError, match="not DNS"):
        make_certificates("m-ca", "m-peer", ["IP:10.0.0.1"], 30)
