#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: tls_certificates
short_description: A new CA and one peer certificate for a cluster, in one step
description:
  - Makes an ECDSA P-256 CA, self-signed, and one peer key and certificate signed by it, for
    serverAuth and clientAuth, naming O(subject_alt_names).
  - The CA's key is not returned - once the peer certificate is signed no further certificate can be
    made, so a pod elsewhere cannot pass for a member.
  - Both certificates carry the extensions that Python's strict X.509 verification (3.13) and OpenSSL
    require (basic constraints and key usage, critical on the CA; subject and authority key identifiers).
  - Nothing on any host changes (the role writes the Secret) - the module runs in check mode too and
    never reports a change.
  - Set C(no_log) on the task - the result holds the peer's private key.
version_added: 0.1.0
author:
  - stateful.mysql developers (@stateful-mysql)
requirements:
  - cryptography (a dependency of ansible-core)
options:
  common_name:
    description: The peer certificate's common name; the CA is named C(<common_name>-ca).
    type: str
    required: true
  ca_common_name:
    description: The CA's common name.
    type: str
    required: true
  subject_alt_names:
    description: The peer certificate's names, each C(DNS:<name>).
    type: list
    elements: str
    required: true
  days:
    description: Days both certificates are valid.
    type: int
    default: 3650
attributes:
  check_mode:
    support: full
    description: The certificates are only computed, so the module runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
"""

EXAMPLES = r"""
- name: Create the cluster CA and the peer certificate
  stateful.mysql.tls_certificates:
    ca_common_name: mysql-ca
    common_name: mysql-peer
    subject_alt_names: ["DNS:mysql-peer", "DNS:*.mysql.mysql.svc"]
  register: certs
  no_log: true
"""

RETURN = r"""
ca_crt:
  description: The CA certificate, PEM.
  type: str
  returned: success
tls_crt:
  description: The peer certificate, PEM.
  type: str
  returned: success
tls_key:
  description: The peer's private key, PEM (PKCS#8, unencrypted).
  type: str
  returned: success
"""

import datetime
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # pragma: no cover - reported by the module
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()


def _key_usage(**on):
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**dict((n, on.get(n, False)) for n in names))


def _pem(obj):
    return obj.public_bytes(serialization.Encoding.PEM).decode("ascii")


def make_certificates(ca_cn, cn, sans, days, now=None):
    """(ca_crt, tls_crt, tls_key) as PEM; the CA key stays in this function."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(minutes=5)  # clocks of the pods may lag a little
    not_after = now + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_cn)])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(not_before).not_valid_after(not_after)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = []
    for san in sans:
        kind, _sep, value = san.partition(":")
        if kind != "DNS" or not value:
            raise ValueError("subject_alt_names: %r is not DNS:<name>" % san)
        names.append(x509.DNSName(value))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True, key_agreement=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    tls_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return _pem(ca), _pem(cert), tls_key


def main():
    module = AnsibleModule(
        argument_spec=dict(
            common_name=dict(type="str", required=True),
            ca_common_name=dict(type="str", required=True),
            subject_alt_names=dict(type="list", elements="str", required=True),
            days=dict(type="int", default=3650),
        ),
        supports_check_mode=True,
    )
    if CRYPTOGRAPHY_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    p = module.params
    if p["days"] < 1:
        module.fail_json(msg="days must be 1 or more")
    try:
        ca_crt, tls_crt, tls_key = make_certificates(p["ca_common_name"], p["common_name"],
                                                     p["subject_alt_names"], p["days"])
    except ValueError as e:
        module.fail_json(msg=str(e))
    module.exit_json(changed=False, ca_crt=ca_crt, tls_crt=tls_crt, tls_key=tls_key)


if __name__ == "__main__":
    main()
