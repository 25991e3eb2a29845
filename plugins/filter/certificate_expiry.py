# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stateful.mysql.certificate_expiry: when each certificate of a PEM text
(a bundle too) expires, on the controller, so verify.yml reports and checks
it without a module start."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: certificate_expiry
short_description: When each certificate of a PEM text expires
description:
  - Reads every certificate of a PEM text (a CA bundle holds several) and says when each one expires,
    how many days are left, and whether that is C(ok), C(expiring) (fewer than O(warn_days) left) or C(expired).
options:
  _input:
    description: PEM text with one or more certificates.
    type: str
    required: true
  warn_days:
    description: Days left under which a certificate counts as C(expiring).
    type: int
    default: 30
  now:
    description: The time to compare with, in seconds since the epoch (default - now).
    type: float
"""

EXAMPLES = """
- name: Report the cluster certificate's expiry
  ansible.builtin.debug:
    msg: "{{ tls_crt_pem | stateful.mysql.certificate_expiry }}"
"""

RETURN = """
_value:
  description: One dict per certificate, in the text's order.
  type: list
  elements: dict
  contains:
    subject:
      description: The subject, as an RFC 4514 string.
      type: str
    not_after:
      description: The expiry, ISO 8601 in UTC.
      type: str
    days_left:
      description: Whole days left (negative once expired).
      type: int
    state:
      description: C(ok), C(expiring) or C(expired).
      type: str
"""

import datetime
import re
import time

from ansible.errors import AnsibleFilterError

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def certificate_expiry(pem, warn_days=30, now=None):
    try:
        from cryptography import x509
    except ImportError:
        raise AnsibleFilterError("certificate_expiry needs the cryptography Python library")
    if not isinstance(pem, str):
        raise AnsibleFilterError("certificate_expiry: expected PEM text, got %s" % type(pem).__name__)
    blocks = _PEM.findall(pem)
    if not blocks:
        raise AnsibleFilterError("certificate_expiry: no PEM certificate in the text")
    now = time.time() if now is None else float(now)
    out = []
    for block in blocks:
        try:
            cert = x509.load_pem_x509_certificate(block.encode())
        except ValueError as e:
            raise AnsibleFilterError("certificate_expiry: unreadable certificate: %s" % e)
        not_after = cert.not_valid_after_utc
        left = not_after.timestamp() - now
        state = "expired" if left <= 0 else "expiring" if left < int(warn_days) * 86400 else "ok"
        out.append(dict(subject=cert.subject.rfc4514_string(),
                        not_after=not_after.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        days_left=int(left // 86400), state=state))
    return out


class FilterModule(object):
    def filters(self):
        return {"certificate_expiry": certificate_expiry}
