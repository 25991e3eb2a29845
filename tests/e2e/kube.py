"""What the end-to-end tests need from the local cluster: run the playbooks,
and run commands and SQL in the real pods (exec through the API server)."""
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CACHE = os.environ.get("STATEFUL_MYSQL_CACHE", os.path.expanduser("~/.cache/stateful-mysql"))
KUBECONFIG = os.environ.get("KUBECONFIG") or os.path.join(CACHE, "cluster", "admin.kubeconfig")
BIN = os.path.dirname(sys.executable)
# Namespaces of the e2e suites start with this, so that two checkouts can run
# suites on the one local cluster at once (E2E_PREFIX=e2e-mine).
PREFIX = os.environ.get("E2E_PREFIX", "e2e")
CLIENT_CNF = "/run/stateful-mysql/client/root.cnf"
# Shell and SQL metacharacters, 64 characters each: they must work and
# appear in no process command line.
PASSWORDS = {
    # 64 characters each for root and donor; the replication password is
    # capped at 32 by CHANGE REPLICATION SOURCE / CHANGE MASTER.
    "mysql_cluster_root_password": "R'o\"ot`$(id)\\ #;--%&*|<>!~{}[]=+?:,.^@ x y z\\'\"end-of-root-64cha",
    "mysql_cluster_replication_password": "re\"pl'$HOME\\n#;`x` ~!@^*( tail32",
    "mysql_cluster_clone_password": "cl#one \\\\ '\"' $((1+1)) ;DROP TABLE t;-- %s %d {x} clone64!-pad-6",
}
for _key, _value in PASSWORDS.items():
    assert len(_value) == (32 if "replication" in _key else 64), (_key, len(_value))


def api():
    config.load_kube_config(config_file=KUBECONFIG)
    return client.CoreV1Api(), client.AppsV1Api()


def count_env(path):
    """Environment that makes ansible-playbook count its module executions
    into `path` (tests/callback_plugins/module_count.py)."""
    return dict(ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, "tests", "callback_plugins"),
                ANSIBLE_CALLBACKS_ENABLED="module_count", STATEFUL_MYSQL_COUNT_FILE=str(path))


def executions(path):
    """The module executions a counted run made: (total, [task names])."""
    with open(path) as fh:
        data = json.load(fh)
    return data["total"], [e["task"] for e in data["executions"]]


def budgets():
    """README "Execution budgets": run -> the most module executions it may make."""
    with open(os.path.join(ROOT, "README.md")) as fh:
        text = fh.read()
    section = text[text.index("### Execution budgets"):]
    section = section[:section.index("\n#", 1)]
    rows = re.findall(r"^\| `([^`]+)`[^|]*\|[^|]*\| (\d+) \|", section, re.M)
    return {run: int(n) for run, n in rows}


def run_playbook(playbook, *args, check=True, count=None):
    """ansible-playbook from the checkout; returns (output, recap). With
    count (a path), the run's module executions are counted into it."""
    env = dict(os.environ, KUBECONFIG=KUBECONFIG, K8S_AUTH_KUBECONFIG=KUBECONFIG,
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    if count is not None:
        env.update(count_env(count))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), playbook, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, out[-6000:]
    m = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out)
    recap = dict(zip(["ok", "changed", "unreachable", "failed"], map(int, m.groups()))) if m else {}
    return out, recap


def host_pid(container_id):
    """The node's PID of a container's PID 1 (its cgroup names the container),
    when the node is this machine: inside the container, PID 1 ignores
    SIGKILL and SIGSTOP from its own processes."""
    cid = container_id.split("://", 1)[-1]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cgroup" % entry) as fh:
                if not fh.read().rstrip().endswith(cid):
                    continue
            with open("/proc/%s/status" % entry) as fh:
                nspid = [line.split()[1:] for line in fh if line.startswith("NSpid:")][0]
        except (OSError, IndexError):  # gone meanwhile, or not ours to read
            continue
        if nspid[-1] == "1":
            return int(entry)
    return None


class Cluster:
    """One deployed cluster: name, namespace and flavor, with exec helpers."""

    def __init__(self, name, namespace, flavor, version):
        self.name, self.namespace, self.flavor, self.version = name, namespace, flavor, version
        self.core, self.apps = api()

    def pod(self, ordinal):
        return "%s-%d" % (self.name, ordinal)

    def pods(self):
        sel = "app.kubernetes.io/instance=%s" % self.name
        items = self.core.list_namespaced_pod(self.namespace, label_selector=sel).items
        return sorted(items, key=lambda p: int(p.metadata.name.rsplit("-", 1)[1]))

    def exec(self, pod, command, container="mysql", timeout=120):
        """Run argv in a container; returns (returncode, stdout, stderr)."""
        resp = stream(self.core.connect_get_namespaced_pod_exec, pod, self.namespace,
                      command=command, container=container, stderr=True, stdin=False,
                      stdout=True, tty=False, _preload_content=False)
        out, err = [], []
        deadline = time.monotonic() + timeout
        while resp.is_open() and time.monotonic() < deadline:
            resp.update(timeout=1)
            if resp.peek_stdout():
                out.append(resp.read_stdout())
            if resp.peek_stderr():
                err.append(resp.read_stderr())
        assert not resp.is_open(), "exec of %s in %s timed out" % (command, pod)
        resp.close()
        try:
            rc = resp.returncode
        except ValueError as exc:
            # The API's error instead of an exit status, e.g. "container not
            # found" when the container ended between a status read and this
            # exec (a polling loop): a failed exec, not a crash of the test.
            rc, err = -1, err + [str(exc)]
        return rc, "".join(out), "".join(err)

    def container_status(self, pod, name="mysql"):
        p = self.core.read_namespaced_pod(pod, self.namespace)
        return [s for s in p.status.container_statuses or [] if s.name == name][0]

    def signal_from_node(self, pod, container, signum):
        """Send a signal to a container's PID 1 from the node (this machine)."""
        st = self.container_status(pod, container)
        pid = host_pid(st.container_id)
        assert pid, "no process of container %s on this node: is the node this machine?" % st.container_id
        os.kill(pid, signum)

    def sh(self, pod, script, container="mysql"):
        rc, out, err = self.exec(pod, ["bash", "-c", script], container=container)
        assert rc == 0, "%s in %s: rc=%s %s" % (script, pod, rc, err)
        return out

    def sql(self, pod, query, host=None, expect_ok=True):
        """SQL through the pod's own client and root option file (no password in argv)."""
        cmd = ["bash", "-c",
               'c=$(command -v mariadb || command -v mysql); exec "$c" --defaults-extra-file=%s -N -B "$@"'
               % CLIENT_CNF, "sql", "-e", query]
        if host:
            # TLS, as the servers require of TCP clients (MariaDB 10.11's client does not start it unasked).
            cmd += ["--host=" + host, "--protocol=TCP"] + (["--ssl"] if self.flavor == "mariadb" else [])
        rc, out, err = self.exec(pod, cmd)
        if expect_ok:
            assert rc == 0, "SQL %r on %s (host %s) failed: %s" % (query, pod, host, err)
            return out.strip()
        return rc, err.strip()

    def replica_status(self, pod):
        """SHOW REPLICA/SLAVE STATUS as a dict (vertical output parsed)."""
        words = "REPLICA" if self.flavor == "mysql" else "SLAVE"
        out = self.sh(pod, 'c=$(command -v mariadb || command -v mysql); "$c" --defaults-extra-file=%s '
                           '--vertical -e "SHOW %s STATUS"' % (CLIENT_CNF, words))
        status = {}
        for line in out.splitlines():
            if ":" in line and not line.startswith("*"):
                k, v = line.split(":", 1)
                status[k.strip()] = v.strip()
        return status

    def events(self, pod):
        """The persistent event log the pod scripts keep on the volume."""
        return self.sh(pod, "cat /var/lib/mysql/.stateful-mysql/events.log")

    def wait_ready(self, replicas, timeout=600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sts = self.apps.read_namespaced_stateful_set(self.name, self.namespace)
            pods = self.pods()
            ready = [p for p in pods if p.status.container_statuses and
                     all(c.ready for c in p.status.container_statuses) and
                     p.metadata.deletion_timestamp is None]
            if (sts.status.ready_replicas or 0) == replicas and len(ready) == replicas == len(pods):
                return time.monotonic()
            time.sleep(2)
        raise AssertionError("%s/%s not Ready within %s s: %s" % (
            self.namespace, self.name, timeout,
            [(p.metadata.name, p.status.phase) for p in self.pods()]))


def count(events, word):
    """Lines of a pod's events.log that hold word."""
    return sum(1 for line in events.splitlines() if word in line)


def write_rows(c, n=20):
    c.sql(c.pod(0), "INSERT INTO e2e.t (v) VALUES %s" % ", ".join("('%s')" % uuid.uuid4().hex for _i in range(n)))


def checksums_equal(c, replicas, timeout=120):
    """CHECKSUM TABLE equal on every pod (the replicas catch up first)."""
    deadline = time.monotonic() + timeout
    while True:
        sums = {c.pod(i): c.sql(c.pod(i), "CHECKSUM TABLE e2e.t").split("\t")[-1] for i in range(replicas)}
        if len(set(sums.values())) == 1:
            return sums
        assert time.monotonic() < deadline, "checksums differ: %s" % sums
        time.sleep(2)


def scale(c, replicas, timeout=600):
    """Change only the StatefulSet's replica count (PVCs are retained)."""
    c.apps.patch_namespaced_stateful_set(c.name, c.namespace, {"spec": {"replicas": replicas}})
    deadline = time.monotonic() + timeout
    while len(c.pods()) != replicas:
        assert time.monotonic() < deadline, "%s pods, not %s" % (len(c.pods()), replicas)
        time.sleep(2)
    c.wait_ready(replicas, timeout=timeout)


def wait_claims(c, n, timeout=120):
    """Until the namespace holds n PVCs: after a scale-in with whenScaled
    Delete, the removed replicas' volumes are gone (a new pod of the same
    ordinal would otherwise return to one)."""
    wait_until(lambda: len(c.core.list_namespaced_persistent_volume_claim(c.namespace).items) == n,
               timeout, "%s PVCs in %s (the removed replicas' volumes gone)" % (n, c.namespace), step=1)


def io_state(st):
    return st.get("Replica_IO_Running", st.get("Slave_IO_Running"))


def sql_state(st):
    return st.get("Replica_SQL_Running", st.get("Slave_SQL_Running"))


def words(c):
    return ("REPLICA", "SOURCE") if c.flavor == "mysql" else ("SLAVE", "MASTER")


def pod_ready(c, name):
    try:
        pod = c.core.read_namespaced_pod(name, c.namespace)
    except Exception:  # not created yet, or being replaced
        return False
    return pod.metadata.deletion_timestamp is None and any(
        cond.type == "Ready" and cond.status == "True" for cond in pod.status.conditions or [])


def wait_until(predicate, timeout, what, step=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "%s: not within %s s" % (what, timeout)
        time.sleep(step)


def replicating(c, pods):
    return all(io_state(c.replica_status(p)) == "Yes" and sql_state(c.replica_status(p)) == "Yes" for p in pods)


def delete_namespace(namespace, timeout=300, wait=True):
    """Delete a namespace; wait until it is gone unless told not to (the end
    of a fixture whose namespace no later test reuses: the pods' shutdown
    and the volumes' removal go on while the next tests run)."""
    core = api()[0]
    try:
        core.delete_namespace(namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespace(namespace)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(2)
    raise AssertionError("namespace %s still there after %s s" % (namespace, timeout))


# Pod Security admission on every e2e namespace: the pods must pass it.
POD_SECURITY_BASELINE = {"pod-security.kubernetes.io/enforce": "baseline",
                         "pod-security.kubernetes.io/enforce-version": "latest"}
POD_SECURITY_RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted",
                           "pod-security.kubernetes.io/enforce-version": "latest"}
# Root over TCP from any pod and the host (a new cluster admits it only from
# inside the pod): for the tests that log in as root from elsewhere (the
# host's writers, a pod reading through a Service), as a user may ask.
REMOTE_ROOT = {"mysql_cluster_root_host": "%"}
# Every password variable empty: the role generates them, as on a first deploy.
NO_PASSWORDS = {"mysql_cluster_root_password": "", "mysql_cluster_replication_password": "",
                "mysql_cluster_clone_password": ""}


def create_namespace(namespace, labels=None):
    """Create the namespace before site.yml does, with these labels (site.yml keeps them)."""
    core = api()[0]
    body = client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=labels or {}))
    core.create_namespace(body)


def deploy_args(flavor, version, name, namespace, tmp_dir, extra=None):
    varfile = os.path.join(tmp_dir, "vars-%s-%s.json" % (namespace, name))
    data = dict(PASSWORDS, mysql_cluster_name=name, mysql_cluster_namespace=namespace)
    data.update(extra or {})
    with open(varfile, "w") as fh:
        json.dump(data, fh)
    return ["-e", "@tests/e2e/vars/local.yml", "-e", "@tests/e2e/vars/%s-%s.yml" % (flavor, version),
            "-e", "@" + varfile]


class SecretWatcher:
    """Watches every process of every container in a namespace for the test
    passwords, from before the deploy until stopped: a thread keeps one exec
    per running container (init containers included), each sampling
    /proc/*/cmdline, /proc/*/environ and /proc/*/comm every half second for
    fifteen seconds, so short-lived processes (probes, the temporary servers
    of init, mariadb-backup, socat, the verify read) are seen too. Each exec
    costs about 0.25 s of CPU to start: one per 5 s on every container of a
    MariaDB cluster took a tenth of this 2-core machine's CPU."""

    SCRIPT = ('for i in $(seq 30); do '
              'cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n"; '
              'for p in /proc/[0-9]*; do read -r c < "$p/comm" 2>/dev/null && echo "comm:$c"; done; '
              'sleep 0.5; done | sort -u')

    def __init__(self, namespace, passwords):
        self.namespace, self.passwords = namespace, dict(passwords)
        self.leaks, self.samples, self.commands = [], {}, set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._busy = set()
        self._thread = threading.Thread(target=self._run, name="secret-watcher", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def watch_for(self, key, value):
        """Also look for value (a canary that proves the watcher sees)."""
        with self._lock:
            self.passwords[key] = value

    def stop(self):
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=60)

    def _containers(self, core):
        try:
            pods = core.list_namespaced_pod(self.namespace).items
        except Exception:  # namespace not there yet, or the API busy
            return []
        found = []
        for pod in pods:
            statuses = (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
            for st in statuses:
                if st.state and st.state.running:
                    found.append((pod.metadata.name, st.name))
        return found

    def _sample(self, pod, container):
        try:
            # A client of its own: stream() patches its client while it runs.
            core = client.CoreV1Api(config.new_client_from_config(config_file=KUBECONFIG))
            resp = stream(core.connect_get_namespaced_pod_exec, pod, self.namespace,
                          command=["sh", "-c", self.SCRIPT], container=container, stderr=True,
                          stdin=False, stdout=True, tty=False, _preload_content=False)
            out = []
            deadline = time.monotonic() + 60
            while resp.is_open() and time.monotonic() < deadline:
                resp.update(timeout=1)
                if resp.peek_stdout():
                    out.append(resp.read_stdout())
            if resp.peek_stdout():
                out.append(resp.read_stdout())
            resp.close()
            text = "".join(out)
            with self._lock:
                self.samples[(pod, container)] = self.samples.get((pod, container), 0) + 1
                for line in text.splitlines():
                    if line.startswith("comm:"):
                        self.commands.add(line[5:])
                for key, password in self.passwords.items():
                    if password in text:
                        self.leaks.append("%s in %s/%s" % (key, pod, container))
        except Exception:  # the container ended or restarted under us
            pass
        finally:
            with self._lock:
                self._busy.discard((pod, container))

    def _run(self):
        core = client.CoreV1Api(config.new_client_from_config(config_file=KUBECONFIG))
        while not self._stop.is_set():
            for key in self._containers(core):
                with self._lock:
                    if key in self._busy:
                        continue
                    self._busy.add(key)
                threading.Thread(target=self._sample, args=key, daemon=True).start()
            self._stop.wait(1)


# From a pod, over TCP to HOST: the client's exit status and output (errors
# included). MODE tls asks for TLS (unverified: the account and transport are
# under test), plain refuses it.
TCP_LOGIN = r"""
. /etc/stateful-mysql/scripts/lib.sh
set +e
host=$1 mode=$2
if [ "$FLAVOR" = mariadb ]; then
  if [ "$mode" = plain ]; then tls=(--skip-ssl); else tls=(--ssl --skip-ssl-verify-server-cert); fi
else
  if [ "$mode" = plain ]; then tls=(--ssl-mode=DISABLED --get-server-public-key); else tls=(--ssl-mode=REQUIRED); fi
fi
out=$("$CLIENT" --defaults-extra-file=/run/stateful-mysql/client/root.cnf --host="$host" --protocol=TCP "${tls[@]}" \
  -N -B -e "SELECT CURRENT_USER(); SHOW SESSION STATUS LIKE 'Ssl_version'" 2>&1)
echo "rc=$?"
echo "$out"
"""


def tcp_login(c, pod, host, mode):
    """Root's login from POD over TCP to HOST, with its password (root.cnf):
    (client exit status, what it printed)."""
    rc, out, err = c.exec(pod, ["bash", "-c", TCP_LOGIN, "login", host, mode])
    assert rc == 0, err
    first, rest = out.partition("\n")[::2]
    return int(first.split("=")[1]), rest.strip()


class Background:
    """Threads (self.threads) that run from `with` until self.stop is set."""

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)


class AckedWriter(Background):
    """Writes numbered rows into e2e.acked on the primary (its pod IP, found
    again after each failure), from the host as root over TLS with the
    password read from the Secret (in this process only), and keeps the ids
    the server acknowledged and when; the longest time between two
    acknowledgements is what a writer saw of a restart. With read_service,
    also samples the Ready endpoints of <name>-read every half second."""

    def __init__(self, c, read_service=True):
        import base64
        self.c = c
        data = c.core.read_namespaced_secret(c.name + "-credentials", c.namespace).data
        self.password = base64.b64decode(data["root-password"]).decode()
        self.acked, self.times, self.failed, self.ready_endpoints = [], [], 0, []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, daemon=True)]
        if read_service:
            self.threads.append(threading.Thread(target=self._endpoints, daemon=True))
        c.sql(c.pod(0), "CREATE DATABASE IF NOT EXISTS e2e; "
                        "CREATE TABLE IF NOT EXISTS e2e.acked (id INT PRIMARY KEY, at DOUBLE)")
        # A later writer on the same table goes on after the ids written before.
        self.first = int(c.sql(c.pod(0), "SELECT COALESCE(MAX(id), 0) FROM e2e.acked")) + 1

    def connect(self):
        import pymysql
        ip = self.c.core.read_namespaced_pod(self.c.pod(0), self.c.namespace).status.pod_ip
        return pymysql.connect(host=ip, port=3306, user="root", password=self.password, autocommit=True,
                               connect_timeout=3, read_timeout=10, write_timeout=10,
                               ssl={"check_hostname": False})

    def _write(self):
        conn, i = None, self.first - 1
        while not self.stop.is_set():
            try:
                conn = conn or self.connect()
                # Each attempt a new id: one whose answer was lost may be there.
                i += 1
                conn.cursor().execute("INSERT INTO e2e.acked (id, at) VALUES (%s, %s)", (i, time.time()))
                self.acked.append(i)
                self.times.append(time.monotonic())
                time.sleep(0.02)
            except Exception:  # noqa: BLE001 - the primary restarting: not acknowledged, try again
                self.failed += 1
                conn = None
                time.sleep(0.2)

    def _endpoints(self):
        discovery = client.DiscoveryV1Api(config.new_client_from_config(config_file=KUBECONFIG))
        sel = "kubernetes.io/service-name=%s-read" % self.c.name
        while not self.stop.is_set():
            try:
                slices = discovery.list_namespaced_endpoint_slice(self.c.namespace, label_selector=sel).items
                self.ready_endpoints.append(sum(1 for s in slices for e in s.endpoints or []
                                                if e.conditions is not None and e.conditions.ready))
            except Exception:  # noqa: BLE001 - the API busy: no sample
                pass
            self.stop.wait(0.5)

    def longest_gap(self):
        """Seconds, the longest time between two acknowledged writes."""
        return max((b - a for a, b in zip(self.times, self.times[1:])), default=0.0)

    def missing_on(self, pod):
        """Acknowledged ids that pod lacks."""
        have = set(int(x) for x in self.c.sql(pod, "SELECT id FROM e2e.acked").split())
        return sorted(set(self.acked) - have)
