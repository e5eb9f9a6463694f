#!/usr/bin/env bash
# hack/soak.sh - load and soak test of svcdisc with dnsperf, on the synthetic cluster of
# hack/dnsbench (10,000 ClusterIP Services, 1,000 headless Services of 10 endpoints).
#
#   hack/soak.sh [-d SECONDS] [-m SECONDS] [-r PERCENT] [-C RATE] [-i SECONDS] [-o OUTDIR]
#                [-L PERCENT] [-E PERCENT] [-G COUNT] [-R PERCENT] [-k]
#
#   -d SECONDS   length of the soak (default 600, or $SOAK_DURATION); -d 20 is CI's short run
#   -m SECONDS   length of the maximum-load run that sets the soak's rate (default 10)
#   -r PERCENT   the soak's load, in percent of that maximum (default 70)
#   -C RATE      EndpointSlice updates a second during both runs (default 20; 0: none)
#   -i SECONDS   latency interval (default 30; a quarter of the soak when that is under 120 s)
#   -o OUTDIR    where results go (default WORK/results; WORK is a new /tmp/svcdisc-soak.*)
#   -L PERCENT   fail if more than this share of the soak's queries is lost (default 0.1)
#   -E PERCENT   fail if more than this share gets a response code other than its class
#                expects (default 0.01)
#   -G COUNT     fail if svcdisc has more than COUNT goroutines more once the load has stopped
#                (up to 10 s after it) than at the start of the soak: a leak (default 50)
#   -R PERCENT   fail if svcdisc's RSS grows by more than PERCENT from the middle to the end
#                (default 20)
#   -k           keep the generated data and binaries in WORK
#
# It starts knotd as the upstream for example.test (CPU 1) and svcdisc, built from the
# working tree, with dnsbench's Corefile (kubernetes + forward + cache) plus pprof (CPU 0),
# on the generated manifests; `dnsbench churn` rewrites an EndpointSlice RATE times a second
# (CPU 1). dnsperf (CPU 1) first runs at full rate for -m seconds on the mixed query file
# (cluster A and SRV, ndots:5 search-path NXDOMAINs, external names), then for -d seconds at
# -r percent of that rate with -v, from which p50/p99 per interval and the response codes
# per class of query come. svcdisc's RSS and goroutines are sampled at the start, every
# interval, the middle, the end and after the load. Prints a summary table; every number is written as TSV
# under OUTDIR. Exit 0 when the thresholds hold, 1 when one does not, 2 on bad usage.
# dnsperf and knotd are installed with apt-get when missing. Only 127.0.0.1 is used.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib.sh
. "$REPO/hack/lib.sh"

DURATION=${SOAK_DURATION:-600}
MAX_SECONDS=10
LOAD_PCT=70
CHURN_RATE=20
INTERVAL=""
OUT=""
LOST_MAX=0.1
UNEXPECTED_MAX=0.01
GOROUTINE_MAX=50
RSS_MAX=20
KEEP=0
WARMUP=2
TIMEOUT=2       # dnsperf -t: a query unanswered after this many seconds is lost
CLIENTS=8       # dnsperf -c
MAX_OUTSTANDING=100   # dnsperf -q at full rate, as hack/dnsbench.sh
SOAK_OUTSTANDING=500  # dnsperf -q at the fixed rate: room for a stall without throttling the rate

log() { printf '[soak] %s\n' "$*" >&2; }
die() { printf '[soak] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
bad_usage() { printf '[soak] %s\n' "$*" >&2; usage >&2; exit 2; }

while getopts 'd:m:r:C:i:o:L:E:G:R:kh' opt; do
  case $opt in
    d) DURATION=$OPTARG ;;
    m) MAX_SECONDS=$OPTARG ;;
    r) LOAD_PCT=$OPTARG ;;
    C) CHURN_RATE=$OPTARG ;;
    i) INTERVAL=$OPTARG ;;
    o) OUT=$OPTARG ;;
    L) LOST_MAX=$OPTARG ;;
    E) UNEXPECTED_MAX=$OPTARG ;;
    G) GOROUTINE_MAX=$OPTARG ;;
    R) RSS_MAX=$OPTARG ;;
    k) KEEP=1 ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
(($# == 0)) || bad_usage "unexpected arguments: $*"
for v in DURATION MAX_SECONDS LOAD_PCT GOROUTINE_MAX; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bad_usage "$v must be a positive whole number, not '${!v}'"
done
[[ $CHURN_RATE =~ ^[0-9]+$ ]] || bad_usage "-C must be a whole number of updates a second, not '$CHURN_RATE'"
for v in LOST_MAX UNEXPECTED_MAX RSS_MAX; do
  [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || bad_usage "$v must be a number of percent, not '${!v}'"
done
((LOAD_PCT <= 100)) || bad_usage "-r must be at most 100"
((DURATION >= 4)) || bad_usage "-d must be at least 4 seconds"
if [[ -z $INTERVAL ]]; then
  INTERVAL=30
  ((DURATION >= 120)) || INTERVAL=$((DURATION / 4))
fi
[[ $INTERVAL =~ ^[1-9][0-9]*$ ]] || bad_usage "-i must be a positive whole number, not '$INTERVAL'"

# Debian packages: dnsperf, and knot for knotd (the upstream).
missing=()
command -v dnsperf >/dev/null || missing+=(dnsperf)
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] || missing+=(knot)
if ((${#missing[@]})); then
  log "installing ${missing[*]} with apt-get"
  sudo=""
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || die "${missing[*]} missing and not root: apt-get install ${missing[*]}"
    sudo=sudo
  fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PATH=$PATH:/usr/sbin
for c in go dnsperf knotd taskset awk sort; do
  command -v "$c" >/dev/null || die "$c is missing"
done

SERVER_CPU=0
CLIENT_CPU=1
if (($(nproc) < 2)); then
  log "WARNING: fewer than 2 CPUs; svcdisc and dnsperf share CPU 0"
  CLIENT_CPU=0
fi
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/svcdisc-soak.XXXXXX)
OUT=${OUT:-$WORK/results}
mkdir -p "$OUT/conf" "$WORK/bin" "$WORK/logs" "$WORK/run" "$WORK/manifests"
OUT=$(cd "$OUT" && pwd)
cd "$WORK"
DATA=$WORK/data
CMDS=$OUT/commands.txt
: >"$CMDS"
BIN=$WORK/bin

# ---------------------------------------------------------------- processes

PIDS=()




# forget_pid PID: no longer stop PID on exit.
forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do
    [[ $p == "$1" ]] || keep+=("$p")
  done
  PIDS=("${keep[@]}")
}

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
  forget_pid "$pid"
}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do
    stop_pid "$p"
  done
  mkdir -p "$OUT/logs"
  cp "$WORK"/logs/*.log "$OUT/logs/" 2>/dev/null || true
  if ((!KEEP)); then
    rm -rf "${DATA:?}" "${WORK:?}/bin" "$WORK/run" "$WORK/manifests" "$WORK/queries"
  fi
  ((rc == 0)) || log "exit $rc; logs in $OUT/logs, results in $OUT"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


now() { printf '%s' "$EPOCHREALTIME"; }

# wait_answer PID PORT NAME TYPE LOG: wait (up to 10 min) until the server answers.
wait_answer() {
  local pid=$1 port=$2 name=$3 type=$4 logf=$5 deadline=$((SECONDS + 600))
  until "$BIN/soak" probe -addr "127.0.0.1:$port" -name "$name" -type "$type" 2>/dev/null; do
    alive "$pid" || { tail -20 "$logf" >&2; die "pid $pid exited; log $logf"; }
    ((SECONDS < deadline)) || die "pid $pid did not answer $name $type within 10 minutes; log $logf"
    sleep 0.2
  done
}

# ---------------------------------------------------------------- build and data

log "work dir $WORK; results in $OUT"
for pkg in svcdisc:./cmd/svcdisc dnsbench:./hack/dnsbench soak:./hack/soak; do
  cmdlog go build -o "$BIN/${pkg%%:*}" "${pkg#*:}"
  (cd "$REPO" && go build -o "$BIN/${pkg%%:*}" "${pkg#*:}") >"$WORK/logs/build-${pkg%%:*}.log" 2>&1 ||
    { cat "$WORK/logs/build-${pkg%%:*}.log" >&2; die "go build ${pkg#*:} failed"; }
done
SVCDISC_REV=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(cd "$REPO" && GIT_OPTIONAL_LOCKS=0 git status --porcelain --untracked-files=no 2>/dev/null | head -1)" ]]; then
  SVCDISC_REV+="+dirty"
fi

log "generating the cluster and the query files (hack/dnsbench gen)"
cmdlog "$BIN/dnsbench" gen -out "$DATA"
"$BIN/dnsbench" gen -out "$DATA" >"$WORK/logs/gen.log" 2>&1 || { cat "$WORK/logs/gen.log" >&2; die "dnsbench gen failed"; }
# shellcheck source=/dev/null
. "$DATA/info.env"
PROBE=${PROBE:?} EXTERNAL_PROBE=${EXTERNAL_PROBE:?} ZONE=${ZONE:?} TTL=${TTL:?}
ln "$DATA/manifests/cluster.yaml" "$WORK/manifests/cluster.yaml" 2>/dev/null ||
  cp "$DATA/manifests/cluster.yaml" "$WORK/manifests/cluster.yaml"
MIXED=$WORK/queries/mixed.txt
CLASSES=$OUT/query-classes.tsv
mkdir -p "$WORK/queries"
cmdlog "$BIN/soak" mix -queries "$DATA/queries" -zone "$ZONE" -out "$MIXED" -classes "$CLASSES"
"$BIN/soak" mix -queries "$DATA/queries" -zone "$ZONE" -out "$MIXED" -classes "$CLASSES" >"$OUT/mix.tsv" ||
  die "soak mix failed"

# ---------------------------------------------------------------- servers

read -r UPSTREAM_PORT DNS_PORT HEALTH_PORT READY_PORT PROM_PORT PPROF_PORT <<<"$(free_ports 6)"

mkdir -p "$WORK/run/upstream/db"
UPSTREAM_CONF=$OUT/conf/upstream.knot.conf
cat >"$UPSTREAM_CONF" <<EOF
server:
    rundir: "$WORK/run/upstream"
    listen: 127.0.0.1@$UPSTREAM_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: notice
database:
    storage: "$WORK/run/upstream/db"
template:
  - id: default
    storage: "$WORK/run/upstream"
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
    semantic-checks: off
zone:
  - domain: example.test
    file: "$DATA/upstream/example.test.db"
EOF

# hack/dnsbench.sh's svcdisc Corefile (kubeadm's without loop, reload and the lameduck),
# plus pprof for the goroutine count.
COREFILE=$OUT/conf/svcdisc.Corefile
cat >"$COREFILE" <<EOF
.:53 {
    errors
    health 127.0.0.1:$HEALTH_PORT
    ready 127.0.0.1:$READY_PORT
    kubernetes $ZONE in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl $TTL
    }
    prometheus 127.0.0.1:$PROM_PORT
    pprof 127.0.0.1:$PPROF_PORT
    forward . 127.0.0.1:$UPSTREAM_PORT {
        max_concurrent 1000
    }
    cache 30
    loadbalance
}
EOF
GOROUTINE_URL="http://127.0.0.1:$PPROF_PORT/debug/pprof/goroutine?debug=1"

start_bg "$WORK/logs/upstream.log" taskset -c "$CLIENT_CPU" knotd -c "$UPSTREAM_CONF"
UPSTREAM_PID=$BG_PID
wait_answer "$UPSTREAM_PID" "$UPSTREAM_PORT" "$EXTERNAL_PROBE" A "$WORK/logs/upstream.log"
log "upstream knotd for example.test on 127.0.0.1:$UPSTREAM_PORT"

t0=$(now)
start_bg "$WORK/logs/svcdisc.log" taskset -c "$SERVER_CPU" "$BIN/svcdisc" serve --conf "$COREFILE" \
  --manifests "$WORK/manifests" --dns-addr "127.0.0.1:$DNS_PORT"
SRV_PID=$BG_PID
wait_answer "$SRV_PID" "$DNS_PORT" "$PROBE" A "$WORK/logs/svcdisc.log"
LOAD_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
log "svcdisc answers on 127.0.0.1:$DNS_PORT after $LOAD_S s"

CHURN_PID=""
if ((CHURN_RATE > 0)); then
  start_bg "$WORK/logs/churn.log" taskset -c "$CLIENT_CPU" "$BIN/dnsbench" churn \
    -manifests "$WORK/manifests" -rate "$CHURN_RATE"
  CHURN_PID=$BG_PID
  wait_answer "$CHURN_PID" "$DNS_PORT" "churn-0.churn.svc.$ZONE" A "$WORK/logs/churn.log"
  log "churn: $CHURN_RATE EndpointSlice updates a second"
fi

# ---------------------------------------------------------------- resources

declare -A S # samples: S[label/field]
SAMPLES=()   # labels in order
RES=$OUT/resources.tsv
printf 't_s\tlabel\trss_kib\tgoroutines\tcpu_pct\n' >"$RES"
last_ticks=$(cpu_ticks "$SRV_PID")
last_time=$(now)

# goroutines: the least of three counts 0.1 s apart, so that goroutines of queries in
# flight at one instant do not pass for growth; NA when pprof does not answer.
goroutines() {
  local i n least=""
  for ((i = 0; i < 3; i++)); do
    ((i == 0)) || sleep 0.1
    n=$("$BIN/soak" goroutines -url "$GOROUTINE_URL" 2>>"$WORK/logs/sample.log") || continue
    [[ -z $least ]] || ((n < least)) && least=$n
  done
  echo "${least:-NA}"
}

# udp_rcvbuf_errors: the kernel's count of UDP datagrams dropped because a socket's receive
# buffer was full (all sockets of the machine).
udp_rcvbuf_errors() {
  awk '$1 == "Udp:" { if (!h) { for (i = 2; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else { print $c; exit } }' /proc/net/snmp
}

# sample T LABEL: svcdisc's RSS, goroutines and CPU use since the previous sample.
sample() {
  local t=$1 label=$2 rss g ticks tm cpu
  alive "$SRV_PID" || { log "svcdisc (pid $SRV_PID) is gone at $label"; return 1; }
  rss=$(rss_kib "$SRV_PID")
  g=$(goroutines)
  ticks=$(cpu_ticks "$SRV_PID")
  tm=$(now)
  cpu=$(awk -v c="$((ticks - last_ticks))" -v hz="$CLK_TCK" -v a="$last_time" -v b="$tm" \
    'BEGIN { printf "%.0f", (b > a ? 100 * c / hz / (b - a) : 0) }')
  last_ticks=$ticks last_time=$tm
  printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$label" "$rss" "$g" "$cpu" >>"$RES"
  S[$label/t]=$t S[$label/rss]=$rss S[$label/g]=$g S[$label/cpu]=$cpu
  SAMPLES+=("$label")
}

sample "-" loaded

# ---------------------------------------------------------------- dnsperf

dnsperf_cmd() {
  DNSPERF=(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$MIXED" -c "$CLIENTS"
    -T 1 -t "$TIMEOUT" -e "$@")
}

log "warm-up: $WARMUP s"
dnsperf_cmd -q "$MAX_OUTSTANDING" -l "$WARMUP"
cmdlog "${DNSPERF[@]}"
"${DNSPERF[@]}" >"$WORK/logs/warmup.txt" 2>&1 || die "dnsperf failed; see $WORK/logs/warmup.txt"

log "maximum load: $MAX_SECONDS s at full rate"
dnsperf_cmd -q "$MAX_OUTSTANDING" -l "$MAX_SECONDS"
cmdlog "${DNSPERF[@]}"
c0=$(cpu_ticks "$SRV_PID")
m0=$(now)
"${DNSPERF[@]}" >"$OUT/max.dnsperf.txt" 2>&1 || { tail -5 "$OUT/max.dnsperf.txt" >&2; die "dnsperf failed"; }
MAX_CPU=$(awk -v c="$(($(cpu_ticks "$SRV_PID") - c0))" -v hz="$CLK_TCK" -v a="$m0" -v b="$(now)" \
  'BEGIN { printf "%.0f", 100 * c / hz / (b - a) }')
MAX_QPS=$(awk -F': *' '/Queries per second:/ {printf "%.0f", $2}' "$OUT/max.dnsperf.txt")
MAX_LOST=$(awk '/Queries lost:/ {print $3 " " $4}' "$OUT/max.dnsperf.txt")
if ! [[ $MAX_QPS =~ ^[1-9][0-9]*$ ]]; then
  die "no queries per second in $OUT/max.dnsperf.txt"
fi
RATE=$((MAX_QPS * LOAD_PCT / 100))
((RATE > 0)) || die "a load of $LOAD_PCT% of $MAX_QPS q/s is nothing"
log "maximum $MAX_QPS q/s (svcdisc CPU $MAX_CPU%, lost $MAX_LOST); soak at $RATE q/s for $DURATION s"

# ---------------------------------------------------------------- soak

STATS=$OUT
dnsperf_cmd -q "$SOAK_OUTSTANDING" -Q "$RATE" -l "$DURATION" -S "$INTERVAL" -v
cmdlog "${DNSPERF[@]}" "|" taskset -c "$CLIENT_CPU" "$BIN/soak" stats -classes "$CLASSES" \
  -interval "$INTERVAL" -out "$STATS" -passthrough "$OUT/soak.dnsperf.txt"
# dnsperf writes into a FIFO that soak stats reads, so that each has a PID of its own.
FIFO=$WORK/run/dnsperf.fifo
mkfifo "$FIFO"
taskset -c "$CLIENT_CPU" "$BIN/soak" stats -classes "$CLASSES" -interval "$INTERVAL" -out "$STATS" \
  -passthrough "$OUT/soak.dnsperf.txt" <"$FIFO" 2>"$WORK/logs/stats.log" &
STATS_PID=$!
PIDS+=("$STATS_PID")
sample 0 start
RCVBUF0=$(udp_rcvbuf_errors)
soak_t0=$(now)
"${DNSPERF[@]}" >"$FIFO" 2>&1 &
SOAK_PID=$!
PIDS+=("$SOAK_PID")

# The sampling times: every interval, the middle, and one second before the end.
MIDDLE=$((DURATION / 2))
END_T=$((DURATION - 1))
times=()
for ((t = INTERVAL; t < END_T; t += INTERVAL)); do
  ((t == MIDDLE)) || times+=("$t interval")
done
times+=("$MIDDLE middle" "$END_T end")
mapfile -t times < <(printf '%s\n' "${times[@]}" | sort -n -k1,1)
SERVER_GONE=0
for tl in "${times[@]}"; do
  t=${tl%% *}
  label=${tl#* }
  [[ $label == interval ]] && label=t$t
  delay=$(awk -v a="$soak_t0" -v t="$t" -v b="$(now)" 'BEGIN { d = a + t - b; printf "%.3f", (d > 0 ? d : 0) }')
  sleep "$delay"
  alive "$SOAK_PID" || break
  sample "$t" "$label" || { SERVER_GONE=1; break; }
done
soak_rc=0 stats_rc=0
wait "$SOAK_PID" || soak_rc=$?
forget_pid "$SOAK_PID"
RCVBUF_DROPS=$(($(udp_rcvbuf_errors) - RCVBUF0))
wait "$STATS_PID" || stats_rc=$?
forget_pid "$STATS_PID"
((soak_rc == 0)) || log "dnsperf exited $soak_rc; see $OUT/soak.dnsperf.txt"
((stats_rc == 0)) || { cat "$WORK/logs/stats.log" >&2; log "soak stats exited $stats_rc"; }
# settle_goroutines waits, up to 10 s, for the goroutines of queries still in flight (one per
# query on the general path; a forward waits out its timeout) to end, so that only a leak stays.
settle_goroutines() {
  local i g
  for ((i = 0; i < 10; i++)); do
    g=$(goroutines)
    [[ $g != NA && ${S[start/g]:-NA} != NA ]] && ((g - S[start/g] <= GOROUTINE_MAX)) && return 0
    sleep 1
  done
  return 0
}
((SERVER_GONE)) || { sleep 2; settle_goroutines; sample "-" after || SERVER_GONE=1; }
[[ -n $CHURN_PID ]] && stop_pid "$CHURN_PID"
alive "$SRV_PID" || SERVER_GONE=1
stop_pid "$SRV_PID"
stop_pid "$UPSTREAM_PID"
[[ -s $STATS/summary.env ]] || die "no statistics from the soak (dnsperf exit $soak_rc, soak stats exit $stats_rc)"
# shellcheck source=/dev/null
. "$STATS/summary.env"
SOAK_QPS=$(awk -F': *' '/Queries per second:/ {printf "%.0f", $2}' "$OUT/soak.dnsperf.txt")

# ---------------------------------------------------------------- verdict

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? 100 * a / b : 0) }'; }
over() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

FAIL=()
LOST_PCT=$(pct "$LOST" "$SENT")
UNEXPECTED_PCT=$(pct "$UNEXPECTED" "$ANSWERED")
((SENT > 0)) || FAIL+=("no queries sent")
((soak_rc == 0)) || FAIL+=("dnsperf exited $soak_rc")
((stats_rc == 0)) || FAIL+=("soak stats exited $stats_rc")
((SERVER_GONE == 0)) || FAIL+=("svcdisc exited during the soak")
over "$LOST_PCT" "$LOST_MAX" && FAIL+=("lost $LOST_PCT% of queries > $LOST_MAX%")
over "$UNEXPECTED_PCT" "$UNEXPECTED_MAX" && FAIL+=("unexpected response codes for $UNEXPECTED_PCT% > $UNEXPECTED_MAX%")
RSS_GROWTH=NA G_GROWTH=NA
if [[ -n ${S[middle/rss]:-} && -n ${S[end/rss]:-} ]]; then
  RSS_GROWTH=$(awk -v a="${S[middle/rss]}" -v b="${S[end/rss]}" 'BEGIN { printf "%.1f", 100 * (b - a) / a }')
  over "$RSS_GROWTH" "$RSS_MAX" && FAIL+=("RSS grew $RSS_GROWTH% from the middle to the end > $RSS_MAX%")
else
  FAIL+=("no middle or end sample of svcdisc")
fi
# Goroutines: under load the count includes one per query in flight on the general path, so a
# sample during the soak measures the latency of the moment, not a leak; what stays once the
# load has stopped does.
if [[ ${S[start/g]:-NA} != NA && ${S[after/g]:-NA} != NA ]]; then
  G_GROWTH=$((${S[after/g]} - ${S[start/g]}))
  ((G_GROWTH <= GOROUTINE_MAX)) || FAIL+=("goroutines grew by $G_GROWTH from the start to after the load > $GOROUTINE_MAX")
else
  FAIL+=("no goroutine count at the start or after the load (pprof at $GOROUTINE_URL)")
fi
VERDICT=PASS
((${#FAIL[@]} == 0)) || VERDICT=FAIL

# ---------------------------------------------------------------- report

report() {
  local label
  printf 'svcdisc %s soak: %s s at %s q/s = %s%% of the maximum %s q/s (%s s, svcdisc CPU %s%%, lost %s)\n' \
    "$SVCDISC_REV" "$DURATION" "$RATE" "$LOAD_PCT" "$MAX_QPS" "$MAX_SECONDS" "$MAX_CPU" "$MAX_LOST"
  printf 'cluster: %s ClusterIP + %s headless Services (%s endpoints); churn %s EndpointSlice updates/s; loaded in %s s\n' \
    "$SERVICES" "$HEADLESS" "$ENDPOINTS" "$CHURN_RATE" "$LOAD_S"
  printf 'svcdisc on CPU %s; dnsperf -c %s -q %s -T 1 -t %s -e, knotd and churn on CPU %s; %s CPUs, %s; %s\n' \
    "$SERVER_CPU" "$CLIENTS" "$SOAK_OUTSTANDING" "$TIMEOUT" "$CLIENT_CPU" "$(nproc)" \
    "$(awk '{print "load average " $1 " " $2 " " $3}' /proc/loadavg)" "$(date -u +%Y-%m-%dT%H:%MZ)"
  printf '\nqueries: sent %s, answered %s, lost %s (%s%%, limit %s%%), unexpected rcode %s (%s%%, limit %s%%); %s q/s achieved\n' \
    "$SENT" "$ANSWERED" "$LOST" "$LOST_PCT" "$LOST_MAX" "$UNEXPECTED" "$UNEXPECTED_PCT" "$UNEXPECTED_MAX" "${SOAK_QPS:-?}"
  printf 'UDP datagrams the kernel dropped for a full receive buffer meanwhile (any socket): %s\n' "$RCVBUF_DROPS"
  printf '\n'
  awk -F'\t' 'NR == 1 { printf "%-12s %-9s %9s %9s %7s %10s  %s\n", "class", "expect", "sent", "answered", "lost", "unexpected", "rcodes"; next }
    { printf "%-12s %-9s %9s %9s %7s %10s  %s\n", $1, $2, $3, $4, $5, $6, $7 }' "$STATS/classes.tsv"
  printf '\nlatency per interval (a lost query counts as slower than any answer)\n'
  awk -F'\t' 'NR == 1 { printf "%-10s %8s %9s %6s %6s %8s %8s %9s %8s\n", "seconds", "q/s", "answered", "lost", "unexp", "p50 us", "p99 us", "p99.9 us", "max us"; next }
    { q = $4; if (q != "-") q = sprintf("%.0f", q)
      printf "%-10s %8s %9s %6s %6s %8s %8s %9s %8s\n", $2 "-" $3, q, $5, $6, $7, $8, $9, $10, $11 }' "$STATS/intervals.tsv"
  printf '%-10s %8s %9s %6s %6s %8s %8s %9s %8s\n' all "${SOAK_QPS:-?}" "$ANSWERED" "$LOST" "$UNEXPECTED" \
    "$P50_US" "$P99_US" "$P999_US" "$MAX_US"
  printf '\nsvcdisc     %6s %9s %11s %6s\n' 't s' 'RSS MiB' goroutines 'CPU%'
  for label in "${SAMPLES[@]}"; do
    case $label in loaded | start | middle | end | after) ;; *) continue ;; esac
    printf '%-11s %6s %9s %11s %6s\n' "$label" "${S[$label/t]}" "$(mib "${S[$label/rss]}")" "${S[$label/g]}" "${S[$label/cpu]}"
  done
  printf 'middle to end: RSS %s%% (limit %s%%); start to after the load: goroutines %s (limit %s); every sample in resources.tsv\n' \
    "$RSS_GROWTH" "$RSS_MAX" "$G_GROWTH" "$GOROUTINE_MAX"
  printf '\nverdict: %s\n' "$VERDICT"
  local f
  for f in "${FAIL[@]}"; do
    printf '  - %s\n' "$f"
  done
}

report | tee "$OUT/table.txt"
{
  printf 'key\tvalue\n'
  printf 'revision\t%s\nduration_s\t%s\nmax_seconds\t%s\nmax_qps\t%s\nmax_cpu_pct\t%s\nload_pct\t%s\nrate_qps\t%s\n' \
    "$SVCDISC_REV" "$DURATION" "$MAX_SECONDS" "$MAX_QPS" "$MAX_CPU" "$LOAD_PCT" "$RATE"
  printf 'achieved_qps\t%s\nchurn_per_s\t%s\ninterval_s\t%s\nload_s\t%s\n' "${SOAK_QPS:-}" "$CHURN_RATE" "$INTERVAL" "$LOAD_S"
  printf 'sent\t%s\nanswered\t%s\nlost\t%s\nlost_pct\t%s\nunexpected_rcode\t%s\nunexpected_pct\t%s\n' \
    "$SENT" "$ANSWERED" "$LOST" "$LOST_PCT" "$UNEXPECTED" "$UNEXPECTED_PCT"
  printf 'p50_us\t%s\np99_us\t%s\np999_us\t%s\nmax_us\t%s\n' "$P50_US" "$P99_US" "$P999_US" "$MAX_US"
  printf 'udp_rcvbuf_drops\t%s\n' "$RCVBUF_DROPS"
  printf 'rss_growth_pct\t%s\ngoroutine_growth\t%s\nverdict\t%s\n' "$RSS_GROWTH" "$G_GROWTH" "$VERDICT"
} >"$OUT/summary.tsv"
log "results in $OUT (table.txt, summary.tsv, intervals.tsv, classes.tsv, resources.tsv, commands.txt)"
[[ $VERDICT == PASS ]] || exit 1
