# hack/lib.sh - shell helpers shared by hack/dnsbench.sh, hack/soak.sh and
# hack/diffcoredns.sh; sourced, not run. The caller defines log and die, and, for
# cmdlog and start_bg, CMDS and the PIDS array start_bg adds to.

# The CoreDNS release dnsbench.sh measures and diffcoredns.sh compares against
# (internal/harness's CoreDNSVersion says the same).
COREDNS_VERSION=v1.14.7

# coredns_path: where ensure_coredns installs CoreDNS; SVCDISC_BENCH_CACHE moves the
# cache (default ~/.cache/svcdisc-bench).
coredns_path() {
  echo "${SVCDISC_BENCH_CACHE:-$HOME/.cache/svcdisc-bench}/coredns-$COREDNS_VERSION/coredns"
}

# ensure_coredns: build CoreDNS $COREDNS_VERSION from the Go module proxy into the
# cache unless it is there already (several minutes the first time); sets COREDNS.
ensure_coredns() {
  COREDNS=$(coredns_path)
  [[ -x $COREDNS ]] && return 0
  local bin
  bin=$(dirname "$COREDNS")
  log "building CoreDNS $COREDNS_VERSION into $bin (several minutes)"
  mkdir -p "$bin"
  [[ -n ${CMDS:-} ]] && cmdlog env "GOBIN=$bin" go install "github.com/coredns/coredns@$COREDNS_VERSION"
  # Outside any module, so that go.mod and go.work here play no part.
  # CoreDNS is a test peer: it builds with the machine's own Go, as it always has.
  (cd "${TMPDIR:-/tmp}" && GOTOOLCHAIN=local GOBIN=$bin go install "github.com/coredns/coredns@$COREDNS_VERSION") ||
    die "go install github.com/coredns/coredns@$COREDNS_VERSION failed"
  [[ -x $COREDNS ]] || die "no CoreDNS binary at $COREDNS after go install"
}

# cmdlog CMD...: append CMD, shell-quoted, to the file $CMDS.
cmdlog() {
  local q
  printf -v q '%q ' "$@"
  printf '%s\n' "${q% }" >>"$CMDS"
}

# alive PID: the process exists and is not a zombie.
alive() {
  local st
  st=$(awk '{sub(/.*\) /, ""); print $1}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z ]]
}

# start_bg LOG CMD...: start CMD in the background, output to LOG; sets BG_PID.
start_bg() {
  local logf=$1
  shift
  cmdlog "$@"
  "$@" >"$logf" 2>&1 &
  BG_PID=$!
  PIDS+=("$BG_PID")
}

# free_ports N: free loopback ports (TCP and UDP), asking the kernel through python3 when
# it is there, else random ports that ss does not list.
free_ports() {
  local n=$1
  if command -v python3 >/dev/null && python3 - "$n" 2>/dev/null <<'EOF'; then return 0; fi
import socket, sys
held, ports = [], []
while len(ports) < int(sys.argv[1]):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", t.getsockname()[1]))
    except OSError:
        continue
    held += [t, u]
    ports.append(t.getsockname()[1])
print(" ".join(map(str, ports)))
EOF
  local ports=() p tries=0
  while ((${#ports[@]} < n)); do
    ((tries++ < 1000)) || die "no free port found"
    p=$((20000 + RANDOM % 30000))
    [[ " ${ports[*]} " == *" $p "* ]] && continue
    [[ -z "$(ss -Htuan "( sport = :$p )" 2>/dev/null)" ]] || continue
    ports+=("$p")
  done
  echo "${ports[*]}"
}

cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# go.mod needs Go 1.27.3: every script that runs go sources this file.
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
