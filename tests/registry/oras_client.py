# Drives PyPI's `oras` (the OCI Registry As Storage Python SDK) the way a user of it would, for
# tests/registry/clients.rs: push files to a plain-HTTP registry with Basic credentials (which
# oras trades for a bearer token at the realm the registry names), then pull them back.
#
#   python oras_client.py HOST USER PASSWORD REF FILES_DIR OUT_DIR CHUNKED
#
# Pushes every file in FILES_DIR (its working directory, since oras only pushes files below it)
# to HOST/REF, chunked (POST, PATCH..., PUT) when CHUNKED is "chunked", else monolithic; pulls
# REF into OUT_DIR; prints {"digest": the Docker-Content-Digest of the manifest PUT,
# "pulled": [file names]} as JSON on stdout.
import json
import os
import sys

import oras.provider

host, user, password, ref, files_dir, out_dir, chunked = sys.argv[1:8]
registry = oras.provider.Registry(hostname=host, insecure=True)
registry.auth.set_basic_auth(user, password)
target = f"{host}/{ref}"

os.chdir(files_dir)
files = sorted(os.listdir("."))
pushed = registry.push(
    target,
    files=files,
    do_chunked=chunked == "chunked",
    chunk_size=1024 * 1024,
    quiet=True,
)
pulled = registry.pull(target, outdir=out_dir)
print(
    json.dumps(
        {
            "status": pushed.status_code,
            "digest": pushed.headers.get("Docker-Content-Digest"),
            "pulled": sorted(os.path.basename(p) for p in pulled),
        }
    )
)
