#!/bin/sh
# `npm test`: every compiled test file under node's test runner (run `tsc` first; npm's pretest does).
# `sh scripts/test.sh dist/test/x/y.test.js ...` runs only those, in the same environment.
#
# The suite runs in a private scratch directory, removed afterwards (the runner's exit status is kept):
#   TMPDIR           $SCRATCH/tmp: QEMU sockets, FIFO directories, temporary bundles. Tests check that
#                    a failed capture leaves no FIFO directory and warn about ones left by a killed
#                    vmpm, so what other vmpm runs left in the host's /tmp must not be seen here.
#   VMPM_RUNTIME_DIR $SCRATCH/run: where captures keep their claims (src/capture/claim.ts); fault tests
#                    leave claims on purpose, and they must not land in the host's /run/vmpm.
# The Linux guest the suite builds from Debian packages stays cached across runs in the real temp dir
# (VMPM_GUEST_CACHE, unless the caller set it).
set -u
host_tmp=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$host_tmp/vmpm-test.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$scratch/tmp" "$scratch/run"
export VMPM_GUEST_CACHE="${VMPM_GUEST_CACHE:-$host_tmp}"
export VMPM_RUNTIME_DIR="${VMPM_RUNTIME_DIR:-$scratch/run}"
export TMPDIR="$scratch/tmp"
if [ $# -eq 0 ]; then set -- $(find dist/test -name '*.test.js' | sort); fi
node --test --test-reporter=spec "$@"
