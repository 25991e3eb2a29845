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
