#!/bin/sh
# `npm test`: every compiled test file under node's test runner (run `tsc` first; npm's pretest does).
# VMPM_RUNTIME_DIR (where captures keep their claims, src/capture/claim.ts) points at a private
# temporary directory unless the caller set it: fault tests leave claims there on purpose (a guest
# whose QEMU was killed mid-capture), and they must not land in the host's /run/vmpm. It is removed
# afterwards; the runner's exit status is kept.
set -u
if [ -z "${VMPM_RUNTIME_DIR:-}" ]; then
  VMPM_RUNTIME_DIR=$(mktemp -d -t vmpm-test-runtime.XXXXXX) || exit 1
  export VMPM_RUNTIME_DIR
  trap 'rm -rf "$VMPM_RUNTIME_DIR"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi
node --test --test-reporter=spec $(find dist/test -name '*.test.js' | sort)
