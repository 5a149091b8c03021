#!/usr/bin/env bash
# Starts a system libvirtd (qemu:///system) on a host without systemd, the way CI and the libvirt tests
# need it (Debian 12, libvirt 9.0; measured: see ../shared/reference/interop/README.md "libvirt").
#
#   scripts/libvirtd-nosystemd.sh start   prepare, then start virtlogd and libvirtd if not running;
#                                         prints "started virtlogd PID" / "started libvirtd PID" for
#                                         each daemon it started (and nothing for one already running)
#   scripts/libvirtd-nosystemd.sh prepare only the directories, users/groups and qemu.conf
#
# It never stops or restarts a daemon it finds running, and never rewrites an existing qemu.conf: the
# test fixture stops only the PIDs printed here.
set -euo pipefail

prepare() {
  mkdir -p /var/log/libvirt/qemu /run/libvirt /var/lib/libvirt/qemu
  # Without these, libvirtd's QEMU driver fails to load ("Failed to parse user 'libvirt-qemu'"),
  # even with user="root" in qemu.conf.
  for g in kvm libvirt libvirt-qemu; do
    getent group "$g" >/dev/null || groupadd --system "$g"
  done
  getent passwd libvirt-qemu >/dev/null ||
    useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin -g libvirt-qemu libvirt-qemu
  if [ ! -e /etc/libvirt/qemu.conf ]; then
    mkdir -p /etc/libvirt
    # QEMU runs as root, no relabelling, no cgroups: a container or CI VM has no systemd to own them.
    cat >/etc/libvirt/qemu.conf <<'EOF'
# written by vmpm scripts/libvirtd-nosystemd.sh: libvirtd without systemd (CI, tests)
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
EOF
  fi
}

running() { # name -> pid of a live daemon whose pidfile says so
  local pidfile="/run/$1.pid" pid
  [ -r "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$1" ] && echo "$pid"
}

start() { # name -> starts it daemonised unless running; prints "started NAME PID"
  local name=$1 pid i
  if running "$name" >/dev/null; then return 0; fi
  "/usr/sbin/$name" -d
  for i in $(seq 1 100); do
    if pid=$(running "$name"); then
      echo "started $name $pid"
      return 0
    fi
    sleep 0.05
  done
  echo "libvirtd-nosystemd: $name did not write /run/$name.pid" >&2
  return 1
}

wait_ready() { # the RPC socket answers
  local i
  for i in $(seq 1 200); do
    if virsh -c qemu:///system version >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  echo "libvirtd-nosystemd: libvirtd does not answer on qemu:///system" >&2
  virsh -c qemu:///system version >&2 || true
  return 1
}

case "${1:-}" in
  prepare) prepare ;;
  start)
    prepare
    start virtlogd
    start libvirtd
    wait_ready
    ;;
  *)
    echo "usage: $0 start|prepare" >&2
    exit 2
    ;;
esac
