#!/usr/bin/env bash
# crash-check.sh BUNDLE [OUTDIR]
#
# Opens vmpm's exports of a Linux bundle in `crash` (the Red Hat kernel crash-dump analyser), which
# needs the kernel's debug vmlinux: for a Debian kernel it is the linux-image-<release>-dbg package
# (about 860 MB to download, 5.6 GB installed). This script never installs it: `apt-get download`
# fetches the .deb into a cache and only usr/lib/debug/boot/vmlinux-<release> is extracted (~630 MB).
#
#   cache: $VMPM_CRASH_CACHE (default ~/.cache/vmpm-crash); the release comes from the bundle's
#   VMCOREINFO (OSRELEASE). Exports both `--format elf` and `--format kdump` into OUTDIR (default: a
#   temp dir) and runs `crash -s` with `sys`, `log` (last lines), `bt -a` on each.
set -euo pipefail

bundle=${1:?usage: scripts/crash-check.sh BUNDLE [OUTDIR]}
outdir=${2:-$(mktemp -d /tmp/vmpm-crash-XXXXXX)}
here=$(cd "$(dirname "$0")/.." && pwd)
vmpm="$here/bin/vmpm"
cache=${VMPM_CRASH_CACHE:-$HOME/.cache/vmpm-crash}
mkdir -p "$cache" "$outdir"

command -v crash >/dev/null || { echo "crash-check: crash is not installed (apt-get install crash)" >&2; exit 2; }
release=$("$vmpm" section "$bundle" vmcoreinfo | sed -n 's/^OSRELEASE=//p')
[ -n "$release" ] || { echo "crash-check: $bundle has no VMCOREINFO OSRELEASE (not a Linux guest with -device vmcoreinfo?)" >&2; exit 2; }
pkg="linux-image-${release}-dbg"
vmlinux="$cache/vmlinux-$release"

if [ ! -s "$vmlinux" ]; then
  deb=$(ls "$cache"/"${pkg}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    echo "crash-check: apt-get download $pkg (about 860 MB) into $cache" >&2
    (cd "$cache" && apt-get download -q "$pkg")
    deb=$(ls "$cache"/"${pkg}"_*.deb | head -n1)
  fi
  echo "crash-check: extracting usr/lib/debug/boot/vmlinux-$release" >&2
  dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/lib/debug/boot/vmlinux-$release" > "$vmlinux.partial"
  mv "$vmlinux.partial" "$vmlinux"
fi

cmds="$outdir/crash-cmds"
printf '%s\n' 'sys' 'log | tail -n 15' 'bt -a' 'quit' > "$cmds"
status=0
for format in elf kdump; do
  dump="$outdir/export.$format"
  "$vmpm" export "$bundle" --format "$format" -o "$dump" --force >&2
  echo "=== crash -s -i $cmds $vmlinux $dump"
  if ! crash -s -i "$cmds" "$vmlinux" "$dump" </dev/null; then
    echo "crash-check: crash failed on the $format export" >&2
    status=1
  fi
done
exit $status
