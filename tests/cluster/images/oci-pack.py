#!/usr/bin/env python
"""Pack a root filesystem folder as an OCI image layout tarball.

    python3 oci-pack.py ROOTFS OUT.tar --name REF [--label k=v]... [--entrypoint X]...
                [--cmd X]... [--env K=V]...

One uncompressed layer (GNU tar of ROOTFS, numeric owners, /dev /proc /sys
emptied), an image config, a manifest and an index.json whose manifest
carries the `io.containerd.image.name` annotation, so that
`ctr images import` names the image REF. Prints the manifest digest.
"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("rootfs")
    p.add_argument("out")
    p.add_argument("--name", required=True)
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--entrypoint", action="append", default=[])
    p.add_argument("--cmd", action="append", default=[])
    p.add_argument("--env", action="append",
                   default=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    a = p.parse_args()

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(a.out))) as tmp:
        layer = os.path.join(tmp, "layer.tar")
        subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "--sort=name", "-C", a.rootfs,
             "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
             "-cf", layer, "."],
            check=True)
        layer_digest = sha256_file(layer)
        layer_size = os.path.getsize(layer)

        labels = dict(kv.split("=", 1) for kv in a.label)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        config = {
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": a.env, "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
            "history": [{"created": created, "created_by": "tests/cluster/images/oci-pack.py"}],
        }
        if a.entrypoint:
            config["config"]["Entrypoint"] = a.entrypoint
        if a.cmd:
            config["config"]["Cmd"] = a.cmd
        config_b = json.dumps(config, sort_keys=True).encode()
        config_d = hashlib.sha256(config_b).hexdigest()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:" + config_d, "size": len(config_b)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": "sha256:" + layer_digest, "size": layer_size}],
            "annotations": labels,
        }
        manifest_b = json.dumps(manifest, sort_keys=True).encode()
        manifest_d = hashlib.sha256(manifest_b).hexdigest()
        tag = a.name.rsplit(":", 1)[1] if ":" in a.name.rsplit("/", 1)[-1] else "latest"
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + manifest_d, "size": len(manifest_b),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"io.containerd.image.name": a.name,
                                "org.opencontainers.image.ref.name": tag},
            }],
        }

        def add_bytes(tf, name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = int(time.time())
            tf.addfile(ti, io.BytesIO(data))

        part = a.out + ".part"
        with tarfile.open(part, "w") as tf:
            add_bytes(tf, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
            add_bytes(tf, "index.json", json.dumps(index, sort_keys=True).encode())
            add_bytes(tf, "blobs/sha256/" + config_d, config_b)
            add_bytes(tf, "blobs/sha256/" + manifest_d, manifest_b)
            tf.add(layer, "blobs/sha256/" + layer_digest)
        os.replace(part, a.out)
    print("sha256:" + manifest_d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
