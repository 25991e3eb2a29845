# -*- coding: utf-8 -*-
# Copyright: stateful.mysql developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A StatefulSet's pods during a roll (stateful.mysql.statefulset_roll): pure
functions on the kubernetes client's objects, unit-tested on their own."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json

# The label the StatefulSet controller puts on each pod: its revision.
REVISION_LABEL = "controller-revision-hash"


def partition_of(sts):
    """The StatefulSet's rolling-update partition (0 when unset)."""
    strategy = sts.spec.update_strategy if sts.spec is not None else None
    rolling = strategy.rolling_update if strategy is not None else None
    return (rolling.partition or 0) if rolling is not None else 0


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def partition_patch(sts, partition):
    """A patch that lowers the partition, in the StatefulSet and in the copy
    of the last apply it keeps: so the role's next apply, which renders
    partition 0 once the roll is done, finds nothing to change."""
    patch = {"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}}}
    text = (sts.metadata.annotations or {}).get(LAST_APPLIED)
    if text:
        try:
            applied = json.loads(text)
            applied["spec"]["updateStrategy"] = patch["spec"]["updateStrategy"]
        except (ValueError, KeyError, TypeError):
            return patch
        patch["metadata"] = {"annotations": {LAST_APPLIED: json.dumps(applied, separators=(",", ":"), sort_keys=True)}}
    return patch


def _last_line(text, width=300):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:width] if lines else ""


def _container_state(st, kind):
    """One container's trouble as a phrase, or '' when it has none."""
    state, last = st.state, st.last_state
    if state is not None and state.waiting is not None:
        words = "%s %s waiting: %s" % (kind, st.name, state.waiting.reason or "")
        if state.waiting.message:
            words += " (%s)" % _last_line(state.waiting.message)
        if last is not None and last.terminated is not None and last.terminated.exit_code:
            words += ", last exit %s: %s" % (last.terminated.exit_code, _last_line(last.terminated.message))
        return words
    if state is not None and state.terminated is not None and state.terminated.exit_code:
        return "%s %s failed, exit %s: %s" % (kind, st.name, state.terminated.exit_code,
                                              _last_line(state.terminated.message))
    if kind == "init container" and state is not None and state.running is not None:
        return "init container %s running" % st.name
    return ""


def pod_state(pod):
    """Why a pod is not yet serving, in a few words; '' when it is Ready."""
    if pod.metadata.deletion_timestamp is not None:
        return "terminating"
    status = pod.status
    if status is None:
        return "no status yet"
    words = []
    for st in status.init_container_statuses or []:
        if st.state is not None and st.state.terminated is not None and not st.state.terminated.exit_code:
            continue
        phrase = _container_state(st, "init container")
        if phrase:
            words.append(phrase)
            break
    for st in status.container_statuses or []:
        if words and st.state is not None and st.state.waiting is not None and st.state.waiting.reason == "PodInitializing":
            continue
        phrase = _container_state(st, "container")
        if phrase:
            words.append(phrase)
    ready = [c for c in status.conditions or [] if c.type == "Ready"]
    if ready and ready[0].status == "True" and not words:
        return ""
    if not words:
        why = (": " + ready[0].message) if ready and ready[0].message else ""
        words.append("phase %s, not Ready%s" % (status.phase, why))
    return "; ".join(words)


def _when(text):
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def upgrade_lines(events, since=None):
    """The upgrade records of a volume's events.log (init.sh upgrade_datadir)
    at or after ``since`` (an aware datetime; None for all), without their
    time and host."""
    out = []
    for line in (events or "").splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 3 or not parts[2].startswith("upgrade: "):
            continue
        when = _when(parts[0])
        # The event log's clock has seconds only: a second early is the same start.
        if since is not None and (when is None or when < since - datetime.timedelta(seconds=1)):
            continue
        out.append(parts[2])
    return out


# Waiting reasons of a pod that will not start on its template.
STUCK_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CrashLoopBackOff",
                 "CreateContainerConfigError", "CreateContainerError", "RunContainerError")


def stuck(pod):
    """Whether a pod is not Ready and one of its containers cannot start."""
    status = pod.status
    if status is None or pod.metadata.deletion_timestamp is not None:
        return False
    if any(c.type == "Ready" and c.status == "True" for c in status.conditions or []):
        return False
    for st in (status.init_container_statuses or []) + (status.container_statuses or []):
        if st.state is not None and st.state.waiting is not None and st.state.waiting.reason in STUCK_REASONS:
            return True
    return False
