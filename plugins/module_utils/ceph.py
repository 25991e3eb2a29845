# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the ceph and rbd command-line tools for the Ceph modules.

Connection options are shared by every Ceph module (doc fragment
``stateful.mysql.ceph``).  Every call has a bounded time: ``--connect-timeout``
for the ceph CLI, and every tool runs under coreutils ``timeout`` (through
``AnsibleModule.run_command``).  No key is ever put on a command line: keys
are read from ``ceph auth get ... -f json`` output.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shlex
import time

CEPH_COMMON_ARGS = dict(
    cluster=dict(type="str", default="ceph"),
    conf=dict(type="path"),
    keyring=dict(type="path", no_log=False),
    user=dict(type="str", default="client.admin"),
    timeout=dict(type="int", default=30),
)

# Extra seconds the tool gets beyond --connect-timeout to print its answer
# once connected.
_GRACE = 15
# Seconds between timeout's TERM and its KILL of a tool that ignores TERM.
_KILL_AFTER = 5
# Exit statuses of coreutils timeout: the time ran out (TERM), the tool
# ignored TERM and was KILLed after --kill-after (timeout, in the tool's
# process group, is KILLed too: -9 from run_command, 128 + 9 from a shell),
# and timeout itself failed / could not run / found no command.
_RC_TIMED_OUT = 124
_RC_KILLED = (-9, 128 + 9)
_RC_TIMEOUT_FAILED = (125, 126, 127)

# Pool names: Ceph accepts almost anything, but names that are awkward on a
# command line, in a StorageClass or in a cap string are refused here.
POOL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# Ceph entity names: TYPE.ID
ENTITY_RE = re.compile(r"^(client|mgr|mon|osd|mds)\.[A-Za-z0-9][A-Za-z0-9_.@-]*$")


class CephError(Exception):
    """A ceph/rbd call that failed.  ``kind`` classifies the cause."""

    def __init__(self, msg, cmd=None, rc=None, stdout="", stderr="", kind="error"):
        super(CephError, self).__init__(msg)
        self.msg = msg
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.kind = kind

    def result(self):
        """Keyword arguments for fail_json."""
        out = dict(msg=self.msg, rc=self.rc, stderr=self.stderr, kind=self.kind)
        if self.cmd:
            out["cmd"] = self.cmd
        return out


def user_id(user):
    """client.admin -> admin (for --id); a bare id is returned as it is."""
    if user.startswith("client."):
        return user[len("client."):]
    return user


def entity_name(name):
    """kube -> client.kube; client.kube stays."""
    return name if "." in name else "client." + name


def _last_error_line(stderr):
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("Error ") or "error" in ln.lower():
            return ln
    return lines[-1] if lines else ""


class CephCLI(object):
    """Runs ``ceph``/``rbd`` with the module's connection options."""

    def __init__(self, module, runner=None):
        self.module = module
        p = module.params
        self.cluster = p.get("cluster") or "ceph"
        self.conf = p.get("conf")
        self.keyring = p.get("keyring")
        self.user = p.get("user") or "client.admin"
        self.timeout = 30 if p.get("timeout") is None else p["timeout"]
        self.commands = []
        # run_command-like: runner(cmd, **kw) -> (rc, stdout, stderr); tests inject one.
        self._runner = runner
        self._bins = {}

    # -- preflight ---------------------------------------------------------
    def preflight(self):
        """Fail early, with a clear message, on options that cannot work."""
        if self.timeout < 1:
            raise CephError("timeout must be at least 1 second, got %s" % self.timeout, kind="argument")
        if self.conf and not os.path.isfile(self.conf):
            raise CephError(
                "Ceph configuration file %s does not exist (option conf); give the path of the "
                "cluster's ceph.conf on this host" % self.conf, kind="conf")
        if self.keyring:
            if not os.path.isfile(self.keyring):
                raise CephError(
                    "keyring %s does not exist (option keyring); give the keyring of %s on this host"
                    % (self.keyring, self.user), kind="keyring")
            if not os.access(self.keyring, os.R_OK):
                raise CephError("keyring %s is not readable by this user" % self.keyring, kind="keyring")

    def _bin(self, name, package="ceph-common", why="the Ceph admin host needs the ceph and rbd CLIs"):
        if name not in self._bins:
            path = self.module.get_bin_path(name, required=False)
            if not path:
                raise CephError(
                    "the %s command was not found on this host; install %s (%s)" % (name, package, why),
                    kind="missing_cli")
            self._bins[name] = path
        return self._bins[name]

    def _common(self):
        args = ["--cluster", self.cluster, "--id", user_id(self.user)]
        if self.conf:
            args += ["--conf", self.conf]
        if self.keyring:
            args += ["--keyring", self.keyring]
        return args

    # -- running -----------------------------------------------------------
    def run(self, args, tool="ceph", json_out=True, check=True, stdin=None):
        """Run ``tool args``; returns (rc, parsed-or-text stdout, stderr).

        Raises CephError with a classified message when the tool fails and
        ``check`` is true, and always when the cluster cannot be reached.
        """
        cmd = [self._bin(tool)] + self._common()
        if tool == "ceph":
            cmd += ["--connect-timeout", str(self.timeout)]
            if json_out:
                cmd += ["--format", "json"]
        else:
            # rbd/rados: bound the mount and every monitor/OSD operation.
            t = str(self.timeout)
            cmd += ["--client-mount-timeout", t, "--rados-mon-op-timeout", t, "--rados-osd-op-timeout", t]
            if json_out:
                cmd += ["--format", "json"]
        cmd += list(args)
        shown = " ".join(shlex.quote(a) for a in [tool] + list(args))
        bound = self.timeout + _GRACE
        # timeout TERMs the tool's process group after `bound` s, and KILLs it
        # _KILL_AFTER s later if it is still there.
        cmd = [self._bin("timeout", "coreutils", "every Ceph call runs under a time bound"),
               "--kill-after=%d" % _KILL_AFTER, str(bound)] + cmd
        self.commands.append(shown)
        runner = self._runner or self.module.run_command
        started = time.monotonic()
        try:
            # binary_data: stdin is passed as it is (no newline added);
            # expand_user_and_vars off: caps and names are not shell words.
            rc, out, err = runner(
                cmd, data=stdin, binary_data=True, environ_update=self._env(),
                expand_user_and_vars=False, handle_exceptions=False)
        except OSError as e:
            raise CephError("could not run %s: %s" % (tool, e), cmd=shown, kind="missing_cli")
        elapsed = time.monotonic() - started
        out, err = out or "", err or ""
        if rc == _RC_TIMED_OUT or (rc in _RC_KILLED and elapsed >= bound):
            raise CephError(
                "`%s` did not finish within %d s: the Ceph monitors of cluster '%s' are not reachable "
                "or not answering (conf %s); check mon_host and that the monitors are up"
                % (shown, bound, self.cluster, self.conf or "default"),
                cmd=shown, rc=rc, stdout=out, stderr=err, kind="unreachable")
        if rc in _RC_TIMEOUT_FAILED and err.startswith("timeout:"):
            raise CephError("could not run %s: %s" % (tool, _last_error_line(err)), cmd=shown, rc=rc,
                            stdout=out, stderr=err, kind="missing_cli")
        if rc != 0:
            kind = self.classify(rc, err, elapsed)
            if kind in ("unreachable", "keyring", "conf", "auth") or check:
                raise CephError(self.explain(kind, shown, rc, err), cmd=shown, rc=rc,
                                stdout=out, stderr=err, kind=kind)
            return rc, out, err
        if json_out:
            text = out.strip()
            if not text:
                return rc, None, err
            try:
                return rc, json.loads(text), err
            except ValueError:
                raise CephError("`%s` did not print JSON: %s" % (shown, text[:200]), cmd=shown,
                                rc=rc, stdout=out, stderr=err, kind="output")
        return rc, out, err

    @staticmethod
    def _env():
        """Environment changes for the tools (run_command starts from os.environ)."""
        # The modules parse English messages; keep the tools' locale fixed.
        return {"LC_ALL": "C"}

    def classify(self, rc, stderr, elapsed=0.0):
        e = stderr or ""
        low = e.lower()
        if "conf_read_file" in e or "unable to open config file" in low:
            return "conf"
        # Before the keyring test: the CLI also complains about default keyring
        # paths it did not need when the real trouble is an unreachable monitor.
        if "timed out" in low or rc == 110 or "connection refused" in low or "failed to fetch mon config" in low:
            return "unreachable"
        if "unable to find a keyring" in low or "no keyring found" in low:
            return "keyring"
        if "permission denied" in low or "eacces" in low or "handle_auth_bad_method" in low or "authentication error" in low:
            return "auth"
        if "error connecting to the cluster" in low:
            return "unreachable"
        if "einval" in low or "parse failed" in low:
            return "invalid"
        if "enoent" in low or "does not exist" in low or rc == 2:
            return "not_found"
        return "error"

    def explain(self, kind, shown, rc, stderr):
        last = _last_error_line(stderr)
        where = "cluster '%s' (conf %s, user %s)" % (self.cluster, self.conf or "default", self.user)
        if kind == "unreachable":
            return ("could not reach the Ceph monitors of %s within %d s: %s; check mon_host in the "
                    "conf and that the monitors are up" % (where, self.timeout, last or "timed out"))
        if kind == "keyring":
            return ("no usable keyring for %s on %s: %s; give option keyring (or put one where the "
                    "conf's keyring setting points)" % (self.user, where, last))
        if kind == "conf":
            return "could not read the Ceph configuration of %s: %s" % (where, last)
        if kind == "auth":
            return ("Ceph refused %s for %s: %s; check that the keyring holds the key of %s and that "
                    "its caps allow this command" % (shown, where, last, self.user))
        return "`%s` failed (rc=%s) on %s: %s" % (shown, rc, where, last or "no message")

    def ceph(self, *args, **kw):
        return self.run(list(args), tool="ceph", **kw)

    def rbd(self, *args, **kw):
        return self.run(list(args), tool="rbd", **kw)


def fail(module, err, **extra):
    """fail_json from a CephError, keeping the commands run so far."""
    res = err.result()
    res.update(extra)
    module.fail_json(**res)
