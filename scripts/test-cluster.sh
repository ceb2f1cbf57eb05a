#!/usr/bin/env bash
# The integration, conformance and real-client tests again, against Stowage scaled out: three
# nodes over S3 (Ceph RGW) and PostgreSQL behind HAProxy (STOWAGE_TEST_TARGET=cluster, see
# test/helpers/cluster.ts). Files that read or damage a storage root (fsck, adoption), or test
# the server's own HTTP framing and connection limits (the balancer's job in a cluster), are
# not in the list. Without the engines it says so loudly and skips, unless CI is set.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || missing+=(postgresql-15)
command -v radosgw >/dev/null || missing+=(radosgw)
command -v ceph-mon >/dev/null || missing+=(ceph-mon)
command -v haproxy >/dev/null || missing+=(haproxy)
if (( ${#missing[@]} > 0 )); then
  line=$(printf '!%.0s' {1..78})
  printf '%s\n!! CLUSTER TESTS SKIPPED: not installed: %s\n!! apt-get install -y postgresql-15 ceph-mon ceph-osd radosgw ceph-common haproxy\n%s\n' "$line" "${missing[*]}" "$line" >&2
  [[ -n "${CI:-}" ]] && exit 1
  exit 0
fi

STOWAGE_TEST_TARGET=cluster exec npx vitest run \
  test/integration/conformance-workflows-content.test.ts \
  test/integration/conformance-workflows-push.test.ts \
  test/integration/conformance-workflows-pull.test.ts \
  test/integration/conformance-workflows-main.test.ts \
  test/integration/manifests-put.test.ts \
  test/integration/manifests-read-delete.test.ts \
  test/integration/manifest-tags-sparse.test.ts \
  test/integration/uploads.test.ts \
  test/integration/uploads-mount.test.ts \
  test/integration/blobs.test.ts \
  test/integration/read-path.test.ts \
  test/integration/referrers.test.ts \
  test/integration/listing.test.ts \
  test/integration/base-and-errors.test.ts \
  test/integration/limits.test.ts \
  test/integration/import.test.ts \
  test/integration/import-streaming.test.ts \
  test/e2e/skopeo-images.test.ts \
  test/e2e/skopeo-registry-ops.test.ts \
  test/e2e/podman.test.ts \
  test/e2e/buildah.test.ts \
  test/e2e/docker.test.ts \
  test/e2e/containerd.test.ts \
  test/e2e/import.test.ts \
  "$@"
