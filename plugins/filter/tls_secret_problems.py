# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stateful.mysql.tls_secret_problems: what keeps a certificate Secret the
user provides (cert-manager's layout) from serving the cluster, checked on
the controller before anything changes. The problems name keys and
certificate fields, never the private key."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: tls_secret_problems
short_description: Why a certificate Secret cannot serve the cluster
description:
  - Checks the data of a Secret in cert-manager's layout (C(tls.crt), C(tls.key), C(ca.crt), base64 as the API
    holds it) and returns what is wrong, an empty list when nothing is.
  - C(tls.crt) must be a certificate, first in its file, whose key is C(tls.key), signed by a CA of C(ca.crt),
    valid now, naming each of O(names) (a DNS subject alternative name, wildcards matched one label deep).
options:
  _input:
    description: The Secret's data.
    type: dict
    required: true
  names:
    description: DNS names the certificate must cover.
    type: list
    elements: str
    required: true
  now:
    description: The time to compare with, in seconds since the epoch (default - now).
    type: float
"""

EXAMPLES = """
- name: Refuse a certificate that does not name the pods
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
  vars:
    problems: "{{ live.secrets['db-tls'] | stateful.mysql.tls_secret_problems(['*.db.ns.svc']) }}"
"""

RETURN = """
_value:
  description: One sentence per problem.
  type: list
  elements: str
"""

import base64
import binascii
import datetime
import re
import time

from ansible.errors import AnsibleFilterError

_PEM = re.compile(br"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
KEYS = ("tls.crt", "tls.key", "ca.crt")


def _covers(pattern, name):
    """Whether a certificate's DNS name ``pattern`` covers ``name`` (a wildcard
    stands for one label); a wanted wildcard is covered only by itself."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    if pattern.startswith("*.") and not name.startswith("*."):
        return "." in name and name.split(".", 1)[1] == pattern[2:]
    return False


def _certs(pem, x509):
    return [x509.load_pem_x509_certificate(block) for block in _PEM.findall(pem)]


def _signed_by(cert, ca):
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    key = ca.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        return cert.issuer == ca.subject
    except Exception:
        return False


def tls_secret_problems(data, names, now=None):
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise AnsibleFilterError("tls_secret_problems needs the cryptography Python library")
    if not isinstance(data, dict):
        raise AnsibleFilterError("tls_secret_problems: expected a Secret's data (a dict)")
    missing = [k for k in KEYS if not data.get(k)]
    if missing:
        return ["it lacks %s (cert-manager writes ca.crt for a CA or self-signed issuer)" % ", ".join(missing)]
    raw = {}
    for k in KEYS:
        try:
            raw[k] = base64.b64decode(data[k], validate=True)
        except (binascii.Error, ValueError, TypeError):
            return ["%s is not base64" % k]
    try:
        leaf = _certs(raw["tls.crt"], x509)
        cas = _certs(raw["ca.crt"], x509)
    except ValueError as e:
        return ["a certificate does not parse: %s" % e]
    if not leaf:
        return ["tls.crt holds no PEM certificate"]
    if not cas:
        return ["ca.crt holds no PEM certificate"]
    cert, problems = leaf[0], []
    try:
        key = serialization.load_pem_private_key(raw["tls.key"], password=None)
    except (ValueError, TypeError):
        return ["tls.key is not an unencrypted PEM private key"]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, spki) != \
            cert.public_key().public_bytes(serialization.Encoding.DER, spki):
        problems.append("tls.key is not the key of the certificate in tls.crt")
    # An intermediate may follow the leaf in tls.crt (cert-manager puts it there).
    chain = leaf[1:]
    issuer = next((c for c in chain + cas if _signed_by(cert, c)), None)
    if issuer is None:
        problems.append("tls.crt (%s) is not signed by a CA of ca.crt" % cert.subject.rfc4514_string())
    elif issuer in chain and not any(_signed_by(issuer, ca) or issuer == ca for ca in cas):
        problems.append("the intermediate of tls.crt is not signed by a CA of ca.crt")
    when = datetime.datetime.fromtimestamp(time.time() if now is None else float(now), datetime.timezone.utc)
    start = cert.not_valid_before_utc
    end = cert.not_valid_after_utc
    if when < start:
        problems.append("tls.crt is valid only from %s" % start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if when > end:
        problems.append("tls.crt expired %s" % end.strftime("%Y-%m-%dT%H:%M:%SZ"))
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    lacking = [n for n in names if not any(_covers(s, n) for s in sans)]
    if lacking:
        problems.append("tls.crt does not name %s (its DNS names: %s)" % (", ".join(lacking), ", ".join(sans) or "none"))
    return problems


class FilterModule(object):
    def filters(self):
        return {"tls_secret_problems": tls_secret_problems}
