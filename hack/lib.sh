# hack/lib.sh - shell helpers shared by hack/dnsbench.sh and hack/soak.sh; sourced, not
# run. The caller defines log, die, CMDS and the PIDS array start_bg adds to.

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
