#!/usr/bin/env bash
# hack/dnsbench.sh - svcdisc vs CoreDNS (file, file+cache) vs Knot DNS, side by side, on
# one synthetic cluster (10,000 ClusterIP Services, 1,000 headless Services of 10
# endpoints, 100 namespaces), with dnsperf on loopback.
#
#   hack/dnsbench.sh [-d SECONDS] [-o OUTDIR] [-q OUTSTANDING] [-c CLIENTS] [-C RATE] [-k] [MIX...]
#
#   -d SECONDS      length of each dnsperf run (default 20)
#   -o OUTDIR       where results go (default WORK/results; WORK is a new /tmp/svcdisc-dnsbench.*)
#   -q OUTSTANDING  dnsperf -q, queries in flight (default 100)
#   -c CLIENTS      dnsperf -c, client sockets (default 8)
#   -C RATE         add a server "svcdisc+churn": svcdisc while `dnsbench churn` flips RATE
#                   endpoint readinesses a second in a manifest file (default 0: off)
#   -k              keep the generated data and binaries in WORK
#   MIX             a, nxdomain, srv, external (default: all four)
#
# Each server runs pinned to CPU 0, dnsperf (and the upstream knotd) to CPU 1. Per mix and
# server: start, wait until it answers, 2 s warm-up, a run at maximum load (dnsperf -q
# outstanding), then, for every server again, a run at a fixed load of 50% of CoreDNS
# file+cache's maximum, from which p50/p99 latency comes (dnsperf -v, one line a response).
# Benchmark only: never part of the test suite. Only 127.0.0.1 is used. See hack/README.md.
#
# Environment: SVCDISC_BENCH_CACHE (default ~/.cache/svcdisc-bench) caches the CoreDNS binary.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib.sh
. "$REPO/hack/lib.sh"
COREDNS=$(coredns_path) # ensure_coredns (hack/lib.sh) builds it when missing

DURATION=20
OUT=""
OUTSTANDING=100
CLIENTS=8
CHURN_RATE=0
KEEP=0
WARMUP=2
TIMEOUT=2       # dnsperf -t: a query unanswered after this many seconds is lost
FIXED_SHARE=50  # fixed load, percent of coredns-file-cache's maximum
BUSY_RETRIES=2  # repeats of a maximum-load run during which the machine was busy
ALL_MIXES=(a nxdomain srv external)

log() { printf '[dnsbench] %s\n' "$*" >&2; }
die() { printf '[dnsbench] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
now() { date +%s.%N; }

while getopts 'd:o:q:c:C:kh' opt; do
  case $opt in
    d) DURATION=$OPTARG ;;
    o) OUT=$OPTARG ;;
    q) OUTSTANDING=$OPTARG ;;
    c) CLIENTS=$OPTARG ;;
    C) CHURN_RATE=$OPTARG ;;
    k) KEEP=1 ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
MIXES=("$@")
((${#MIXES[@]})) || MIXES=("${ALL_MIXES[@]}")
for m in "${MIXES[@]}"; do
  [[ " ${ALL_MIXES[*]} " == *" $m "* ]] || die "unknown mix '$m' (want: ${ALL_MIXES[*]})"
done
for v in DURATION OUTSTANDING CLIENTS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[[ $CHURN_RATE =~ ^[0-9]+$ ]] || die "-C must be a whole number of flips a second"
for c in go dnsperf knotd taskset dig awk sort; do
  command -v "$c" >/dev/null || die "$c is missing (dnsperf: apt-get install dnsperf; knotd: knot; dig: bind9-dnsutils)"
done

SERVER_CPU=0
CLIENT_CPU=1
if (($(nproc) < 2)); then
  log "WARNING: fewer than 2 CPUs; server and dnsperf share CPU 0"
  CLIENT_CPU=0
fi
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/svcdisc-dnsbench.XXXXXX)
OUT=${OUT:-$WORK/results}
mkdir -p "$OUT/conf" "$WORK/bin" "$WORK/logs" "$WORK/run"
OUT=$(cd "$OUT" && pwd)
cd "$WORK"
DATA=$WORK/data
CMDS=$OUT/commands.txt
: >"$CMDS"

# ---------------------------------------------------------------- processes

PIDS=()




# stop_pid PID: SIGTERM, up to 10 s, then SIGKILL; reaps it.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do
    [[ $p == "$pid" ]] || keep+=("$p")
  done
  PIDS=("${keep[@]}")
}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    local i
    for ((i = 0; i < 50; i++)); do
      alive "$p" || break
      sleep 0.1
    done
    alive "$p" && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null || true
  done
  if ((!KEEP)); then
    rm -rf "${DATA:?}" "${WORK:?}/bin" "$WORK/run" "$WORK/manifests-empty" "$WORK/manifests-churn"
  fi
  ((rc == 0)) || log "failed (exit $rc); logs in $WORK/logs"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM



# answers PORT NAME TYPE: the server answers NAME TYPE with at least one record.
answers() {
  local out
  out=$(dig @127.0.0.1 -p "$1" +short +tries=1 +time=1 "$2" "$3" 2>/dev/null) || return 1
  grep -qv '^;' <<<"$out"
}

# wait_answer PID PORT NAME TYPE LOG: wait (up to 10 min) until the server answers.
wait_answer() {
  local pid=$1 port=$2 name=$3 type=$4 logf=$5 deadline=$((SECONDS + 600))
  until answers "$port" "$name" "$type"; do
    alive "$pid" || { tail -20 "$logf" >&2; die "server (pid $pid) exited; log $logf"; }
    ((SECONDS < deadline)) || die "server (pid $pid) did not answer $name $type within 10 minutes; log $logf"
    sleep 0.2
  done
}

# ---------------------------------------------------------------- build and data

# build_svcdisc: the working tree may briefly not compile while someone edits it; retry.
build_svcdisc() {
  local i
  for ((i = 1; i <= 10; i++)); do
    if (cd "$REPO" && go build -o "$WORK/bin/svcdisc" ./cmd/svcdisc) >"$WORK/logs/build-svcdisc.log" 2>&1; then
      cmdlog go build -o "$WORK/bin/svcdisc" ./cmd/svcdisc
      return 0
    fi
    log "go build ./cmd/svcdisc failed (attempt $i/10), retrying in 60 s:"
    head -5 "$WORK/logs/build-svcdisc.log" >&2
    sleep 60
  done
  die "svcdisc does not build; see $WORK/logs/build-svcdisc.log"
}

log "work dir $WORK; results in $OUT"
ensure_coredns
(cd "$REPO" && go build -o "$WORK/bin/dnsbench" ./hack/dnsbench) || die "go build ./hack/dnsbench failed"
cmdlog go build -o "$WORK/bin/dnsbench" ./hack/dnsbench
log "generating the cluster, zone files and query files"
cmdlog "$WORK/bin/dnsbench" gen -out "$DATA"
"$WORK/bin/dnsbench" gen -out "$DATA"
# shellcheck source=/dev/null
. "$DATA/info.env"
PROBE=${PROBE:?} EXTERNAL_PROBE=${EXTERNAL_PROBE:?} ZONE=${ZONE:?} TTL=${TTL:?}
log "building svcdisc from the working tree"
build_svcdisc
SVCDISC_REV=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(cd "$REPO" && GIT_OPTIONAL_LOCKS=0 git status --porcelain --untracked-files=no 2>/dev/null | head -1)" ]]; then
  SVCDISC_REV+="+dirty"
fi
mkdir -p "$WORK/manifests-empty" "$WORK/manifests-churn"
ln "$DATA/manifests/cluster.yaml" "$WORK/manifests-churn/cluster.yaml" 2>/dev/null ||
  cp "$DATA/manifests/cluster.yaml" "$WORK/manifests-churn/cluster.yaml"

# ---------------------------------------------------------------- servers

# knot_conf NAME PORT ZONE=FILE...: write a knotd configuration for one worker per kind.
knot_conf() {
  local name=$1 port=$2 conf=$OUT/conf/$1.knot.conf zf
  shift 2
  mkdir -p "$WORK/run/$name/db"
  {
    printf 'server:\n    rundir: "%s"\n    listen: 127.0.0.1@%s\n' "$WORK/run/$name" "$port"
    printf '    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n'
    printf 'log:\n  - target: stderr\n    any: notice\n'
    printf 'database:\n    storage: "%s"\n' "$WORK/run/$name/db"
    printf 'template:\n  - id: default\n    storage: "%s"\n' "$WORK/run/$name"
    printf '    zonefile-load: whole\n    zonefile-sync: -1\n    journal-content: none\n    semantic-checks: off\n'
    printf 'zone:\n'
    for zf in "$@"; do
      printf '  - domain: %s\n    file: "%s"\n' "${zf%%=*}" "${zf#*=}"
    done
  } >"$conf"
  echo "$conf"
}

# svcdisc_conf NAME PORT: the kubeadm Corefile (Corefile.example) without loop and reload,
# its HTTP listeners on free loopback ports, forwarding to the upstream knotd.
svcdisc_conf() {
  local conf=$OUT/conf/$1.Corefile hp rp pp ports
  ports=$(free_ports 3)
  read -r hp rp pp <<<"$ports"
  cat >"$conf" <<EOF
.:53 {
    errors
    health 127.0.0.1:$hp
    ready 127.0.0.1:$rp
    kubernetes $ZONE in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl $TTL
    }
    prometheus 127.0.0.1:$pp
    forward . 127.0.0.1:$UPSTREAM_PORT {
        max_concurrent 1000
    }
    cache 30
    loadbalance
}
EOF
  echo "$conf"
}

# coredns_conf NAME PORT ZONEFILE CACHE: the same Corefile with file in place of kubernetes;
# CACHE=1 keeps kubeadm's cache 30 (which CoreDNS puts in front of every zone).
coredns_conf() {
  local conf=$OUT/conf/$1.Corefile pp cache=""
  pp=$(free_ports 1)
  (($4)) && cache=$'\n    cache 30'
  cat >"$conf" <<EOF
.:$2 {
    bind 127.0.0.1
    errors
    file $3 $ZONE
    prometheus 127.0.0.1:$pp
    forward . 127.0.0.1:$UPSTREAM_PORT {
        max_concurrent 1000
    }$cache
    loadbalance
}
EOF
  echo "$conf"
}

# start_server SERVER DATASET: start SERVER (svcdisc, svcdisc+churn, coredns-file,
# coredns-file-cache, knot) on the full cluster or the empty one, pinned to SERVER_CPU, and
# wait until it answers. Sets SRV_PID, SRV_PORT, SRV_LOG, SRV_LOAD (seconds to first answer).
START_N=0
start_server() {
  local server=$1 dataset=$2 name conf t0 probe=$PROBE ptype=A zonefile=$DATA/zone/$ZONE.db
  local manifests=$DATA/manifests
  START_N=$((START_N + 1))
  name=$START_N-$server-$dataset
  SRV_LOG=$WORK/logs/$name.log
  SRV_PORT=$(free_ports 1)
  if [[ $dataset == empty ]]; then
    probe=$ZONE ptype=SOA zonefile=$DATA/zone/empty.db manifests=$WORK/manifests-empty
  fi
  [[ $server == svcdisc+churn ]] && manifests=$WORK/manifests-churn
  t0=$(now)
  case $server in
    svcdisc | svcdisc+churn)
      conf=$(svcdisc_conf "$name" "$SRV_PORT")
      start_bg "$SRV_LOG" taskset -c "$SERVER_CPU" "$WORK/bin/svcdisc" serve --conf "$conf" \
        --manifests "$manifests" --dns-addr "127.0.0.1:$SRV_PORT"
      ;;
    coredns-file | coredns-file-cache)
      conf=$(coredns_conf "$name" "$SRV_PORT" "$zonefile" "$([[ $server == *-cache ]] && echo 1 || echo 0)")
      start_bg "$SRV_LOG" taskset -c "$SERVER_CPU" "$COREDNS" -conf "$conf"
      ;;
    knot)
      conf=$(knot_conf "$name" "$SRV_PORT" "$ZONE=$zonefile" "example.test=$DATA/upstream/example.test.db")
      start_bg "$SRV_LOG" taskset -c "$SERVER_CPU" knotd -c "$conf"
      ;;
    *) die "unknown server $server" ;;
  esac
  SRV_PID=$BG_PID
  wait_answer "$SRV_PID" "$SRV_PORT" "$probe" "$ptype" "$SRV_LOG"
  SRV_LOAD=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
}

CHURN_PID=""
start_churn() {
  start_bg "$WORK/logs/churn.log" taskset -c "$CLIENT_CPU" "$WORK/bin/dnsbench" churn \
    -manifests "$WORK/manifests-churn" -rate "$CHURN_RATE"
  CHURN_PID=$BG_PID
  wait_answer "$CHURN_PID" "$SRV_PORT" "churn-0.churn.svc.$ZONE" A "$WORK/logs/churn.log"
}
stop_churn() {
  [[ -n $CHURN_PID ]] || return 0
  stop_pid "$CHURN_PID"
  CHURN_PID=""
  rm -f "$WORK/manifests-churn/churn.yaml"
}

# ---------------------------------------------------------------- dnsperf

# dnsperf_run OUTFILE PORT MIX [extra dnsperf args...]: one dnsperf run pinned to CLIENT_CPU.
dnsperf_run() {
  local outf=$1 port=$2 mix=$3
  shift 3
  local cmd=(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$DATA/queries/$mix.txt"
    -c "$CLIENTS" -q "$OUTSTANDING" -T 1 -t "$TIMEOUT")
  # srv: EDNS0, so that a headless Service's ten SRV records and their addresses (~820 bytes)
  # come back whole; without it every server answers TC, each with a different part.
  [[ $mix == srv ]] && cmd+=(-e)
  cmd+=("$@")
  local TIMEFORMAT='%R %U %S' t
  cmdlog "${cmd[@]}"
  if ! t=$({ time "${cmd[@]}" >"$outf" 2>&1; } 2>&1); then
    tail -5 "$outf" >&2
    die "dnsperf failed; output $outf"
  fi
  # dnsperf's own CPU use: near 100% means the client, not the server, set the pace.
  DNSPERF_CPU=$(awk -v t="$t" 'BEGIN { split(t, a, " "); printf "%.0f", (a[1] > 0 ? 100 * (a[2] + a[3]) / a[1] : 0) }')
}

# stat_of FILE KEY: a value from dnsperf's statistics.
stat_of() {
  case $2 in
    qps) awk -F': *' '/Queries per second:/ {printf "%.0f", $2}' "$1" ;;
    lost) awk '/Queries lost:/ {print $3}' "$1" ;;
    completed) awk '/Queries completed:/ {print $3}' "$1" ;;
    lostpct) awk '/Queries lost:/ {gsub(/[()%]/, "", $4); print $4}' "$1" ;;
    avg_us) awk '/Average Latency \(s\):/ {printf "%.0f", $4 * 1e6}' "$1" ;;
    resp) awk '/Average packet size:/ {print $NF}' "$1" ;;
    rcodes) sed -n 's/^ *Response codes: *//p' "$1" ;;
  esac
}

declare -A R # results, keyed MIX/SERVER/FIELD
declare -A MEM # memory, keyed SERVER/FIELD

# max_run MIX SERVER: start, warm up, run at maximum load, stop. When neither the server
# nor dnsperf used 70% of its core, something else on the machine took the CPU: the run is
# repeated, up to BUSY_RETRIES times, after a pause (earlier attempts are kept as .busyN.txt).
max_run() {
  local mix=$1 server=$2 raw=$OUT/$1.$2.max.txt c0 c1 t0 t1 attempt k pace cpu
  start_server "$server" full
  if [[ -z ${MEM[$server/rss]:-} ]]; then
    sleep 2
    MEM[$server/rss]=$(rss_kib "$SRV_PID")
    MEM[$server/load]=$SRV_LOAD
  fi
  [[ $server == svcdisc+churn ]] && start_churn
  dnsperf_run "$WORK/logs/warmup.txt" "$SRV_PORT" "$mix" -l "$WARMUP"
  for ((attempt = 0; ; attempt++)); do
    c0=$(cpu_ticks "$SRV_PID")
    t0=$(now)
    dnsperf_run "$raw" "$SRV_PORT" "$mix" -l "$DURATION" -S 1
    t1=$(now)
    c1=$(cpu_ticks "$SRV_PID")
    for k in qps completed lost lostpct avg_us resp rcodes; do
      R[$mix/$server/$k]=$(stat_of "$raw" "$k")
    done
    R[$mix/$server/dnsperf_cpu]=$DNSPERF_CPU
    R[$mix/$server/cpu]=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", 100 * c / hz / (b - a) }')
    R[$mix/$server/cpu_us]=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v n="${R[$mix/$server/completed]}" 'BEGIN { printf "%.1f", (n > 0 ? 1e6 * c / hz / n : 0) }')
    cpu=${R[$mix/$server/cpu]}
    if ((cpu >= 90 && DNSPERF_CPU >= 90)); then
      pace=both
    elif ((cpu >= 90)); then
      pace=server
    elif ((DNSPERF_CPU >= 90)); then
      pace=client
    else
      pace=busy
    fi
    R[$mix/$server/pace]=$pace
    log "  $mix $server: ${R[$mix/$server/qps]} q/s, lost ${R[$mix/$server/lost]}, CPU $cpu% (${R[$mix/$server/cpu_us]} us/query), dnsperf CPU $DNSPERF_CPU%"
    if ((attempt >= BUSY_RETRIES || cpu >= 70 || DNSPERF_CPU >= 70)); then
      break
    fi
    log "  neither $server nor dnsperf had its core (busy machine?): again in 10 s"
    mv "$raw" "${raw%.txt}.busy$((attempt + 1)).txt"
    sleep 10
  done
  R[$mix/$server/rss]=$(rss_kib "$SRV_PID")
  stop_churn
  stop_pid "$SRV_PID"
}

# fixed_run MIX SERVER RATE: start, warm up, run at RATE queries a second with -v, and take
# p50/p99 of the per-response latencies; a lost query counts as slower than any answer.
fixed_run() {
  local mix=$1 server=$2 rate=$3 raw=$OUT/$1.$2.fixed.txt verbose=$WORK/logs/verbose.txt
  start_server "$server" full
  [[ $server == svcdisc+churn ]] && start_churn
  dnsperf_run "$WORK/logs/warmup.txt" "$SRV_PORT" "$mix" -l "$WARMUP" -Q "$rate"
  dnsperf_run "$verbose" "$SRV_PORT" "$mix" -l "$DURATION" -Q "$rate" -v
  stop_churn
  stop_pid "$SRV_PID"
  grep -v '^> ' "$verbose" >"$raw"
  local lost
  lost=$(stat_of "$raw" lost)
  R[$mix/$server/flost]=$lost
  R[$mix/$server/fqps]=$(stat_of "$raw" qps)
  awk '$1 == ">" && $NF ~ /^[0-9.]+$/ {print $NF}' "$verbose" | sort -g >"$WORK/logs/lat.txt"
  read -r R["$mix/$server/p50"] R["$mix/$server/p99"] R["$mix/$server/p999"] < <(
    awk -v lost="${lost:-0}" '{ v[NR] = $1 } END {
      n = NR; total = n + lost
      split("0.5 0.99 0.999", ps, " ")
      for (i = 1; i <= 3; i++) {
        k = int(ps[i] * total + 0.999999); if (k < 1) k = 1
        out = out (i > 1 ? " " : "") (k <= n ? sprintf("%.0f", v[k] * 1e6) : "lost")
      }
      print out
    }' "$WORK/logs/lat.txt")
  printf '\nlatency percentiles over %s responses + %s lost (us): p50 %s p99 %s p99.9 %s\n' \
    "$(wc -l <"$WORK/logs/lat.txt")" "${lost:-0}" "${R[$mix/$server/p50]}" "${R[$mix/$server/p99]}" \
    "${R[$mix/$server/p999]}" >>"$raw"
  rm -f "$verbose" "$WORK/logs/lat.txt"
  log "  $mix $server at $rate q/s: p50 ${R[$mix/$server/p50]} us, p99 ${R[$mix/$server/p99]} us, lost $lost"
}

# ---------------------------------------------------------------- run

SERVERS=(svcdisc coredns-file coredns-file-cache knot)
((CHURN_RATE > 0)) && SERVERS+=(svcdisc+churn)

UPSTREAM_PORT=$(free_ports 1)
UPSTREAM_CONF=$(knot_conf upstream "$UPSTREAM_PORT" "example.test=$DATA/upstream/example.test.db")
start_bg "$WORK/logs/upstream.log" taskset -c "$CLIENT_CPU" knotd -c "$UPSTREAM_CONF"
UPSTREAM_PID=$BG_PID
wait_answer "$UPSTREAM_PID" "$UPSTREAM_PORT" "$EXTERNAL_PROBE" A "$WORK/logs/upstream.log"
log "upstream knotd for example.test on 127.0.0.1:$UPSTREAM_PORT"

log "memory baselines (empty cluster zone)"
for server in svcdisc coredns-file coredns-file-cache knot; do
  start_server "$server" empty
  sleep 2
  MEM[$server/empty]=$(rss_kib "$SRV_PID")
  stop_pid "$SRV_PID"
done

for mix in "${MIXES[@]}"; do
  log "mix $mix: maximum load, $DURATION s each"
  for server in "${SERVERS[@]}"; do
    max_run "$mix" "$server"
  done
  ref=${R[$mix/coredns-file-cache/qps]:-0}
  rate=$((ref * FIXED_SHARE / 100))
  ((rate > 0)) || die "no maximum for coredns-file-cache in mix $mix"
  R[$mix/rate]=$rate
  log "mix $mix: fixed load $rate q/s ($FIXED_SHARE% of coredns-file-cache), $DURATION s each"
  for server in "${SERVERS[@]}"; do
    fixed_run "$mix" "$server" "$rate"
  done
done

stop_pid "$UPSTREAM_PID"
mkdir -p "$OUT/logs"
cp "$WORK"/logs/*.log "$OUT/logs/" 2>/dev/null || true

# ---------------------------------------------------------------- report

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

report() {
  local mix server
  printf 'svcdisc %s vs CoreDNS %s vs Knot DNS %s; %s, %s CPUs; %s\n' "$SVCDISC_REV" \
    "$COREDNS_VERSION" "$(knotd -V 2>&1 | awk '{print $NF; exit}')" "$(date -u +%Y-%m-%dT%H:%MZ)" \
    "$(nproc)" "$(awk '{print "load average " $1 " " $2 " " $3}' /proc/loadavg)"
  printf 'cluster: %s ClusterIP Services, %s headless Services with %s endpoints, %s namespaces; TTL %s\n' \
    "$SERVICES" "$HEADLESS" "$ENDPOINTS" "$NAMESPACES" "$TTL"
  printf 'servers on CPU %s, dnsperf on CPU %s: dnsperf -c %s -q %s -T 1 -t %s (srv: -e), %s s a run after %s s warm-up\n' \
    "$SERVER_CPU" "$CLIENT_CPU" "$CLIENTS" "$OUTSTANDING" "$TIMEOUT" "$DURATION" "$WARMUP"
  for mix in "${MIXES[@]}"; do
    printf '\nmix %s (queries/%s.txt): maximum load | fixed load %s q/s (%s%% of coredns-file-cache max)\n' \
      "$mix" "$mix" "${R[$mix/rate]}" "$FIXED_SHARE"
    printf '%-18s %8s %7s %7s %6s %6s %5s %8s %6s %7s %6s | %6s %6s %5s\n' server 'max q/s' 'vs cf+c' \
      'vs knot' 'lost%' 'avg us' 'CPU%' 'CPU us/q' 'pace' 'RSS MiB' 'resp B' 'p50 us' 'p99 us' 'lost'
    for server in "${SERVERS[@]}"; do
      printf '%-18s %8s %7s %7s %6s %6s %5s %8s %6s %7s %6s | %6s %6s %5s\n' "$server" \
        "${R[$mix/$server/qps]}" \
        "$(ratio "${R[$mix/$server/qps]}" "${R[$mix/coredns-file-cache/qps]}")" \
        "$(ratio "${R[$mix/$server/qps]}" "${R[$mix/knot/qps]}")" \
        "${R[$mix/$server/lostpct]}" "${R[$mix/$server/avg_us]}" "${R[$mix/$server/cpu]}" \
        "${R[$mix/$server/cpu_us]}" "${R[$mix/$server/pace]}" "$(mib "${R[$mix/$server/rss]}")" "${R[$mix/$server/resp]}" \
        "${R[$mix/$server/p50]}" "${R[$mix/$server/p99]}" "${R[$mix/$server/flost]}"
    done
    printf 'dnsperf CPU%% in the max runs:'
    for server in "${SERVERS[@]}"; do
      printf ' %s %s' "$server" "${R[$mix/$server/dnsperf_cpu]}"
    done
    printf '\n'
    for server in "${SERVERS[@]}"; do
      printf '  %-17s %s\n' "$server" "${R[$mix/$server/rcodes]}"
    done
  done
  printf '\nmemory after loading the cluster, before any query (empty: the same server on a zone of SOA and NS only)\n'
  printf '%-19s %7s %9s %9s %11s %11s\n' server 'load s' 'RSS MiB' 'empty MiB' 'B/Service' 'B/endpoint'
  for server in svcdisc coredns-file coredns-file-cache knot; do
    [[ -n ${MEM[$server/rss]:-} ]] || continue
    printf '%-19s %7s %9s %9s %11s %11s\n' "$server" "${MEM[$server/load]}" "$(mib "${MEM[$server/rss]}")" \
      "$(mib "${MEM[$server/empty]}")" \
      "$(awk -v a="${MEM[$server/rss]}" -v b="${MEM[$server/empty]}" -v n="$SERVICES" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')" \
      "$(awk -v a="${MEM[$server/rss]}" -v b="${MEM[$server/empty]}" -v n="$ENDPOINTS" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')"
  done
  printf '(B/Service and B/endpoint each charge all the growth to that one kind of object.)\n'
}

report | tee "$OUT/table.txt"
{
  printf 'mix\tserver\tmax_qps\tlost_pct\tavg_us\tcpu_pct\tcpu_us_per_query\tdnsperf_cpu_pct\tpace\trss_kib\tresp_bytes\tfixed_qps\tp50_us\tp99_us\tp999_us\tfixed_lost\n'
  for mix in "${MIXES[@]}"; do
    for server in "${SERVERS[@]}"; do
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mix" "$server" \
        "${R[$mix/$server/qps]}" "${R[$mix/$server/lostpct]}" "${R[$mix/$server/avg_us]}" \
        "${R[$mix/$server/cpu]}" "${R[$mix/$server/cpu_us]}" "${R[$mix/$server/dnsperf_cpu]}" \
        "${R[$mix/$server/pace]}" "${R[$mix/$server/rss]}" "${R[$mix/$server/resp]}" \
        "${R[$mix/$server/fqps]}" "${R[$mix/$server/p50]}" "${R[$mix/$server/p99]}" \
        "${R[$mix/$server/p999]}" "${R[$mix/$server/flost]}"
    done
  done
} >"$OUT/results.tsv"
printf '\ncommands (in order; configurations in %s/conf):\n' "$OUT"
cat "$CMDS"
printf '\nraw dnsperf output, table and commands: %s\n' "$OUT"
