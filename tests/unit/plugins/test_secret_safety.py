"""Issue 27's pieces that decide on their own: which Secrets are rewritten
(one whose annotation holds a copy of its data), and which FailedCreate
events end a wait at once (only this StatefulSet's, only recent ones). The
e2e proofs are tests/e2e/test_secret_lifecycle.py."""
import datetime
import types

from ansible_collections.stateful.mysql.plugins.filter.secrets_to_write import secrets_to_write
from ansible_collections.stateful.mysql.plugins.module_utils.replication import failed_create_messages


def _secret(name, data):
    return {"metadata": {"name": name}, "data": data}


def test_a_secret_with_a_last_applied_copy_is_rewritten_though_its_data_is_the_same():
    live = {"a": {"k": "dg=="}, "b": {"k": "dg=="}}
    wanted = [_secret("a", {"k": "dg=="}), _secret("b", {"k": "dg=="})]
    assert secrets_to_write(wanted, live) == []
    assert [s["metadata"]["name"] for s in secrets_to_write(wanted, live, ["b"])] == ["b"]


def _event(uid, seconds_ago, message, count=1):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return types.SimpleNamespace(
        involved_object=types.SimpleNamespace(uid=uid), last_timestamp=when, event_time=None,
        first_timestamp=when, metadata=types.SimpleNamespace(creation_timestamp=when), message=message, count=count)


def test_only_recent_refusals_of_this_statefulset_end_the_wait():
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    events = [
        _event("me", 5, 'pods "m-0" is forbidden: exceeded quota: q', 3),
        _event("me", 3600, "an hour old"),
        _event("other", 1, "a StatefulSet of the same name, deleted since"),
        _event("me", 1, 'pods "m-0" is forbidden: violates PodSecurity "restricted:latest"'),
    ]
    got = failed_create_messages(events, "me", now - 30)
    assert len(got) == 2, got
    assert got[0].startswith('pods "m-0" is forbidden: violates PodSecurity'), got
    assert "exceeded quota: q" in got[1] and "x3)" in got[1], got
    assert failed_create_messages(events, "me", now + 10) == []


def _pem(days_from_now):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "in %d days" % days_from_now)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=400))
            .not_valid_after(now + datetime.timedelta(days=days_from_now, hours=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_certificate_expiry_reads_every_certificate_of_a_bundle():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.stateful.mysql.plugins.filter.certificate_expiry import certificate_expiry
    got = certificate_expiry(_pem(400) + _pem(29) + _pem(-2))
    assert [(c["subject"], c["state"], c["days_left"]) for c in got] == [
        ("CN=in 400 days", "ok", 400), ("CN=in 29 days", "expiring", 29), ("CN=in -2 days", "expired", -2)], got
    assert certificate_expiry(_pem(29), warn_days=10)[0]["state"] == "ok"
    try:
        certificate_expiry("no certificate here")
    except AnsibleFilterError as e:
        assert "no PEM certificate" in str(e)
    else:
        raise AssertionError("text without a certificate was accepted")


# --- A replica read after the primary, under writes --------------------------

def _reports(primary_pos, replica_pos):
    return [dict(name="m-0", expected_role="primary", reachable=True, healthy=True, problems=[],
                 gtid={"gtid_binlog_pos": primary_pos}),
            dict(name="m-1", expected_role="replica", reachable=True, healthy=True, problems=[], broken=None,
                 gtid={"gtid_slave_pos": replica_pos, "gtid_binlog_pos": replica_pos})]


def test_a_replica_that_caught_up_after_the_primary_was_read_is_not_ahead():
    """Found by rotate_certificates.yml under a write load: the primary read
    at 0-100-554, its replica a moment later at 0-100-605, and the wait
    ended calling the primary behind. Read afresh, the primary holds it."""
    from ansible_collections.stateful.mysql.plugins.module_utils.replication import mark_primary_behind
    reports = _reports("0-100-554", "0-100-605")
    mark_primary_behind(reports, "m", refresh=lambda: {"gtid_binlog_pos": "0-100-610"})
    assert reports[1]["healthy"] and not reports[1]["broken"], reports[1]
    # Truly behind: the fresh read still lacks it.
    reports = _reports("0-100-554", "0-100-605")
    mark_primary_behind(reports, "m", refresh=lambda: {"gtid_binlog_pos": "0-100-554"})
    assert reports[1]["broken"] and "the primary is behind: it lacks 0-100-605" in reports[1]["problems"][-1]
    # The primary gone when read again: nothing is concluded.
    reports = _reports("0-100-554", "0-100-605")
    mark_primary_behind(reports, "m", refresh=lambda: None)
    assert not reports[1]["broken"]


def test_changed_keys_names_only_the_keys_both_hold_with_other_values():
    from ansible_collections.stateful.mysql.plugins.filter.changed_keys import changed_keys
    copy = {"root-password": "YQ==", "replication-password": "Yg==", "clone-password": "Yw=="}
    named = {"root-password": "YQ==", "replication-password": "eg==", "extra": "eA=="}
    assert changed_keys(copy, named, ["root-password", "replication-password", "clone-password"]) == [
        "replication-password"]
    assert changed_keys(copy, copy, list(copy)) == []


def _pki(names, other_ca=False):
    """A CA, a certificate for names and its key, as base64 Secret data."""
    import base64
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key, stranger = (ec.generate_private_key(ec.SECP256R1()) for i in range(3))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    ca = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=9))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(subject).public_key(key.public_key())
            .serial_number(2).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=5))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=True)
            .sign(stranger if other_ca else ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    data = {"ca.crt": ca.public_bytes(pem), "tls.crt": leaf.public_bytes(pem),
            "tls.key": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())}
    return {k: base64.b64encode(v).decode() for k, v in data.items()}, now.timestamp()


def test_a_certificate_secret_is_checked_for_layout_key_issuer_time_and_names():
    from ansible_collections.stateful.mysql.plugins.filter.tls_secret_problems import tls_secret_problems
    wanted = ["m-peer", "*.m.ns.svc"]
    good, now = _pki(["m-peer", "*.m.ns.svc", "m"])
    assert tls_secret_problems(good, wanted, now) == []
    assert tls_secret_problems({k: v for k, v in good.items() if k != "ca.crt"}, wanted) == [
        "it lacks ca.crt (cert-manager writes ca.crt for a CA or self-signed issuer)"]
    narrow, now = _pki(["m-peer", "m-0.m.ns.svc"])
    assert tls_secret_problems(narrow, wanted, now) == [
        "tls.crt does not name *.m.ns.svc (its DNS names: m-peer, m-0.m.ns.svc)"]
    foreign, now = _pki(wanted, other_ca=True)
    assert tls_secret_problems(foreign, wanted, now) == ["tls.crt () is not signed by a CA of ca.crt"]
    other, now = _pki(wanted)
    assert tls_secret_problems(dict(good, **{"tls.key": other["tls.key"]}), wanted, now) == [
        "tls.key is not the key of the certificate in tls.crt"]
    assert tls_secret_problems(good, wanted, now + 6 * 86400)[0].startswith("tls.crt expired 20")
