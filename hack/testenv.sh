#!/usr/bin/env bash
# hack/testenv.sh - a real kube-apiserver + etcd on loopback for svcdisc's tests.
#
# Subcommands:
#   build             build kube-apiserver and etcd into the cache (no-op when cached)
#   start             (re)create the state dir, certs, kubeconfig; start etcd and kube-apiserver
#   stop              stop kube-apiserver, then etcd (logs are kept)
#   stop-apiserver    stop only kube-apiserver (simulate an API outage)
#   start-apiserver   restart kube-apiserver on the same port, same flags, same data
#   stop-etcd         stop only etcd
#   start-etcd        restart etcd on the same ports with the same data dir
#   status            print whether each process is alive (exit 0 if both are, 3 otherwise)
#   mod               maintainers: regenerate hack/testenv/go.mod(+go.sum) for K8S_VERSION
#
# Environment:
#   SVCDISC_TESTENV_CACHE     binary cache root   (default $HOME/.cache/svcdisc-testenv)
#   SVCDISC_TESTENV_DIR       state dir           (default /tmp/svcdisc-testenv; wiped by start)
#   SVCDISC_TESTENV_TIMEOUT   seconds to wait for /readyz (default 90)
#   SVCDISC_TESTENV_SERVICE_CIDR    --service-cluster-ip-range (default 10.96.0.0/16,fd00:10:96::/112)
#   SVCDISC_TESTENV_APISERVER_ARGS  extra kube-apiserver flags, whitespace-separated (default none)
#   SVCDISC_TESTENV_ETCD_ARGS       extra etcd flags, whitespace-separated (default none)
#   (these three are read by start and kept in the state dir: restarts reuse them)
#
# See hack/README.md.
set -euo pipefail
# kube-apiserver and etcd are test peers, not svcdisc: they build with the machine's own
# Go (hack/testenv/go.mod asks for 1.26), as they always have, whatever svcdisc needs.
export GOTOOLCHAIN=${SVCDISC_TESTENV_GOTOOLCHAIN:-local}

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT="$HACK_DIR/$(basename "${BASH_SOURCE[0]}")"
MOD_DIR="$HACK_DIR/testenv"

CACHE_ROOT=${SVCDISC_TESTENV_CACHE:-$HOME/.cache/svcdisc-testenv}
STATE=${SVCDISC_TESTENV_DIR:-/tmp/svcdisc-testenv}
READY_TIMEOUT=${SVCDISC_TESTENV_TIMEOUT:-90}
SERVICE_CIDR=${SVCDISC_TESTENV_SERVICE_CIDR:-10.96.0.0/16,fd00:10:96::/112}
APISERVER_EXTRA=${SVCDISC_TESTENV_APISERVER_ARGS:-}
ETCD_EXTRA=${SVCDISC_TESTENV_ETCD_ARGS:-}

# Versions come from the wrapper module, the single source of truth.
modver() { awk -v m="$1" '$1==m && $2 ~ /^v/ {print $2; exit}' "$MOD_DIR/go.mod"; }
K8S_VERSION=$(modver k8s.io/kubernetes)
ETCD_VERSION=$(modver go.etcd.io/etcd/server/v3)
: "${K8S_VERSION:?cannot read the k8s.io/kubernetes version from $MOD_DIR/go.mod}"
BIN_DIR="$CACHE_ROOT/$K8S_VERSION"
APISERVER_BIN="$BIN_DIR/kube-apiserver"
ETCD_BIN="$BIN_DIR/etcd"

PKI="$STATE/pki"
ENV_FILE="$STATE/env"
PORTS_FILE="$STATE/ports"
KUBECONFIG_FILE="$STATE/kubeconfig"

log() { printf '[testenv] %s\n' "$*" >&2; }
die() { printf '[testenv] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

case "$STATE" in
  *[[:space:]]*) die "SVCDISC_TESTENV_DIR must not contain whitespace: '$STATE'" ;;
  /*) ;;
  *) STATE="$(pwd)/$STATE"; PKI="$STATE/pki"; ENV_FILE="$STATE/env"; PORTS_FILE="$STATE/ports"; KUBECONFIG_FILE="$STATE/kubeconfig" ;;
esac

# ---------------------------------------------------------------- build

have_binaries() { [[ -x "$APISERVER_BIN" && -x "$ETCD_BIN" ]]; }

# go_build OUT PKG [go build args...]: build PKG into a temp file next to OUT, check that it
# runs, then rename it into place (atomic), so an interrupted build never leaves a half binary.
go_build() {
  local out=$1 pkg=$2; shift 2
  local tmp t0
  tmp=$(mktemp "$out.tmp.XXXXXX")
  TMP_FILES+=("$tmp")
  t0=$(now)
  log "building $pkg -> $out"
  (cd "$MOD_DIR" && CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" \
    go build -trimpath -tags=notest -o "$tmp" "$@" "$pkg")
  "$tmp" --version >/dev/null || die "built $pkg but '$tmp --version' fails"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$out"
  log "built $(basename "$out") in $(since "$t0") ($(du -h "$out" | cut -f1))"
}

cmd_build() {
  if have_binaries; then
    log "reusing cached binaries in $BIN_DIR (kube-apiserver $K8S_VERSION, etcd $ETCD_VERSION)"
    return 0
  fi
  command -v go >/dev/null || die "go is not on PATH"
  mkdir -p "$BIN_DIR"
  # Serialize concurrent builds (e.g. two test runs at once) on the same cache.
  if command -v flock >/dev/null; then
    exec 9>"$BIN_DIR/.build.lock"
    if ! flock -n 9; then
      log "another build holds $BIN_DIR/.build.lock; waiting for it"
      flock 9
    fi
    if have_binaries; then
      log "reusing cached binaries in $BIN_DIR (built by another process)"
      return 0
    fi
  fi
  rm -f "$BIN_DIR"/*.tmp.* # left by a build killed with SIGKILL
  TMP_FILES=()
  trap 'rm -f "${TMP_FILES[@]}"' EXIT
  trap 'rm -f "${TMP_FILES[@]}"; exit 130' INT TERM
  local t0 minor
  t0=$(now)
  log "building kube-apiserver $K8S_VERSION and etcd $ETCD_VERSION (cold: ~12-17 min on 2 cores)"
  (cd "$MOD_DIR" && GOWORK=off GOFLAGS=-mod=readonly go mod download) # fail early, clearly
  if [[ ! -x "$ETCD_BIN" ]]; then
    go_build "$ETCD_BIN" go.etcd.io/etcd/server/v3 -ldflags "-s -w"
  fi
  if [[ ! -x "$APISERVER_BIN" ]]; then
    minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
    go_build "$APISERVER_BIN" k8s.io/kubernetes/cmd/kube-apiserver -ldflags "-s -w \
-X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
-X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=$minor \
-X k8s.io/component-base/version.gitTreeState=clean"
  fi
  log "build done in $(since "$t0"); binaries in $BIN_DIR"
}

# Regenerate the wrapper module for K8S_VERSION (default: the current one) and ETCD_VERSION
# (default: the version kubernetes' go.mod pins). Maintainers only; CI uses the committed files.
cmd_mod() {
  local kv=${1:-$K8S_VERSION} gomod staging ev tmpd
  local sv="v0.${kv#v1.}"
  tmpd=$(mktemp -d)
  gomod=$(cd "$tmpd" && GOWORK=off GOFLAGS= go mod download -json "k8s.io/kubernetes@$kv" |
    awk -F'"' '$2=="GoMod" {print $4}')
  rmdir "$tmpd"
  [[ -f "$gomod" ]] || die "cannot download k8s.io/kubernetes@$kv"
  ev=${2:-$(awk '$1=="go.etcd.io/etcd/server/v3" {print $2; exit}' "$gomod")}
  # Staging modules that kubernetes replaces with ./staging/... AND requires.
  # (one awk pass: no grep -q in a pipeline, which SIGPIPEs under pipefail)
  staging=$(awk '
    /^replace[ \t]*\(/ { inrep = 1; next }
    inrep && /^\)/       { inrep = 0; next }
    inrep && $2 == "=>" && $3 ~ /^\.\/staging\// { st[++n] = $1; next }
    !inrep && /^replace/ { next }
    !inrep              { req[$1] = 1; if ($1 == "require" && $2 != "(") req[$2] = 1 }
    END { for (i = 1; i <= n; i++) if (st[i] in req) print st[i] }' "$gomod")
  [[ -n "$staging" ]] || die "found no staging modules in $gomod"
  {
    echo '// Wrapper module that builds kube-apiserver and etcd for hack/testenv.sh.'
    echo '// It is a separate module on purpose: it is not part of github.com/svcdisc/svcdisc ./...'
    echo '// Regenerate with: hack/testenv.sh mod [K8S_VERSION [ETCD_VERSION]]'
    echo
    echo 'module github.com/svcdisc/svcdisc/hack/testenv'
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    grep -E '^godebug ' "$gomod" || true
    echo
    printf 'tool (\n\tgo.etcd.io/etcd/server/v3\n\tk8s.io/kubernetes/cmd/kube-apiserver\n)\n\n'
    printf 'require (\n\tgo.etcd.io/etcd/server/v3 %s\n\tk8s.io/kubernetes %s\n)\n\n' "$ev" "$kv"
    echo 'replace ('
    for m in $staging; do printf '\t%s => %s %s\n' "$m" "$m" "$sv"; done
    echo ')'
  } >"$MOD_DIR/go.mod"
  rm -f "$MOD_DIR/go.sum"
  (cd "$MOD_DIR" && GOWORK=off GOFLAGS= go mod tidy)
  log "regenerated $MOD_DIR/go.mod for kubernetes $kv, etcd $ev"
}

# ---------------------------------------------------------------- processes

# alive NAME: the process in $STATE/NAME.pid exists, is not a zombie, and is ours (its command
# line mentions $STATE, which guards against a recycled PID).
alive() {
  local pid
  pid=$(cat "$STATE/$1.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$STATE/"* ]] || return 1
  echo "$pid"
}

stop_proc() {
  local name=$1 pid i
  if ! pid=$(alive "$name"); then
    rm -f "$STATE/$name.pid"
    log "$name: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$name" >/dev/null || break
    sleep 0.1
  done
  if alive "$name" >/dev/null; then
    log "$name (pid $pid) still alive after 10s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      alive "$name" >/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$STATE/$name.pid"
  log "$name (pid $pid) stopped"
}

# spawn NAME BIN ARGS...: run BIN in its own session (so a Ctrl-C to the caller's process group
# does not hit it) with a minimal environment, logs appended to $STATE/NAME.log, PID in
# $STATE/NAME.pid. `exec` keeps the PID written by the shell the PID of the binary.
spawn() {
  local name=$1; shift
  printf '\n==== %s: starting %s\n' "$(date -Is)" "$name" >>"$STATE/$name.log"
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$STATE/$name.pid" \
    env -i PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$STATE" \
    NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost "$@" \
    </dev/null >>"$STATE/$name.log" 2>&1 &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "$STATE/$name.pid" ]] && break
    sleep 0.05
  done
  [[ -s "$STATE/$name.pid" ]] || die "$name did not start"
}

# Free loopback TCP ports: ask the kernel (bind to port 0) with python3, holding all sockets
# until every port is chosen so they differ; fall back to random ports checked with ss.
free_ports() {
  local n=$1
  if command -v python3 >/dev/null && python3 - "$n" 2>/dev/null <<'EOF'; then return 0; fi
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
  local ports=() p tries=0
  while ((${#ports[@]} < n)); do
    ((tries++ < 1000)) || die "no free port found"
    p=$((20000 + RANDOM % 30000))
    [[ " ${ports[*]} " == *" $p "* ]] && continue
    if command -v ss >/dev/null; then
      [[ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]] || continue
    elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      continue
    fi
    ports+=("$p")
  done
  echo "${ports[*]}"
}

load_ports() {
  [[ -f "$PORTS_FILE" ]] || die "no $PORTS_FILE: run '$0 start' first"
  # shellcheck disable=SC1090
  source "$PORTS_FILE"
}

etcd_args() {
  echo --name=svcdisc-testenv \
    --data-dir="$STATE/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="svcdisc-testenv=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state=new \
    --unsafe-no-fsync \
    $ETCD_EXTRA
}

apiserver_args() {
  echo --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$APISERVER_PORT" \
    --cert-dir="$STATE/apiserver-certs" \
    --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=RBAC \
    --endpoint-reconciler-type=none \
    --disable-admission-plugins=ServiceAccount \
    --profiling=false \
    $APISERVER_EXTRA
}

start_etcd_proc() {
  # shellcheck disable=SC2046 # args are generated without whitespace (checked above)
  spawn etcd "$ETCD_BIN" $(etcd_args)
  local t0 i
  t0=$(now)
  for ((i = 0; i < 300; i++)); do
    if [[ "$(curl -fsS --noproxy '*' -m 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null)" == *'"health":"true"'* ]]; then
      log "etcd healthy on 127.0.0.1:$ETCD_PORT (pid $(cat "$STATE/etcd.pid"), $(since "$t0"))"
      return 0
    fi
    alive etcd >/dev/null || break
    sleep 0.1
  done
  log "etcd did not become healthy; last lines of $STATE/etcd.log:"
  tail -n 30 "$STATE/etcd.log" >&2 || true
  return 1
}

readyz() {
  curl -fsS --noproxy '*' -m 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null
}

start_apiserver_proc() {
  # shellcheck disable=SC2046
  spawn kube-apiserver "$APISERVER_BIN" $(apiserver_args)
  local t0 deadline
  t0=$(now)
  deadline=$((SECONDS + READY_TIMEOUT))
  while ((SECONDS < deadline)); do
    if [[ "$(readyz)" == ok ]]; then
      log "kube-apiserver ready on https://127.0.0.1:$APISERVER_PORT (pid $(cat "$STATE/kube-apiserver.pid"), $(since "$t0"))"
      return 0
    fi
    if ! alive kube-apiserver >/dev/null; then
      log "kube-apiserver exited"
      break
    fi
    sleep 0.25
  done
  log "kube-apiserver not ready after $(since "$t0"); last lines of its log:"
  tail -n 40 "$STATE/kube-apiserver.log" >&2 || true
  log "last lines of $STATE/etcd.log:"
  tail -n 10 "$STATE/etcd.log" >&2 || true
  return 1
}

write_env() {
  local api_pid etcd_pid
  api_pid=$(cat "$STATE/kube-apiserver.pid" 2>/dev/null || true)
  etcd_pid=$(cat "$STATE/etcd.pid" 2>/dev/null || true)
  cat >"$ENV_FILE.tmp" <<EOF
SVCDISC_TEST_KUBECONFIG=$KUBECONFIG_FILE
SVCDISC_TESTENV_DIR=$STATE
SVCDISC_TESTENV_SCRIPT=$SCRIPT
SVCDISC_TESTENV_APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
SVCDISC_TESTENV_APISERVER_PORT=$APISERVER_PORT
SVCDISC_TESTENV_APISERVER_PID=$api_pid
SVCDISC_TESTENV_ETCD_URL=http://127.0.0.1:$ETCD_PORT
SVCDISC_TESTENV_ETCD_PORT=$ETCD_PORT
SVCDISC_TESTENV_ETCD_PEER_PORT=$ETCD_PEER_PORT
SVCDISC_TESTENV_ETCD_PID=$etcd_pid
EOF
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------- certificates

make_certs() {
  command -v openssl >/dev/null || die "openssl is not on PATH"
  mkdir -p "$PKI"
  (
    cd "$PKI"
    exec 2>"$PKI/openssl.log"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 3650 \
      -keyout ca.key -out ca.crt -subj "/CN=svcdisc-testenv-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
    # sign NAME SUBJECT EXTENSIONS
    sign() {
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
      printf '%b' "$3" >"$1.ext"
      openssl x509 -req -sha256 -days 365 -in "$1.csr" -CA ca.crt -CAkey ca.key \
        -CAcreateserial -out "$1.crt" -extfile "$1.ext"
      rm -f "$1.csr" "$1.ext"
    }
    sign apiserver "/CN=kube-apiserver" \
      "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    sign admin "/O=system:masters/CN=admin" \
      "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
    chmod 0600 ./*.key
  ) || { cat "$PKI/openssl.log" >&2; die "certificate generation failed"; }
}

write_kubeconfig() {
  local b64="base64 -w0"
  cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: svcdisc-testenv
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $($b64 "$PKI/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $($b64 "$PKI/admin.crt")
    client-key-data: $($b64 "$PKI/admin.key")
contexts:
- name: svcdisc-testenv
  context:
    cluster: svcdisc-testenv
    user: admin
    namespace: default
current-context: svcdisc-testenv
EOF
  chmod 0600 "$KUBECONFIG_FILE"
}

# ---------------------------------------------------------------- subcommands

cmd_start() {
  have_binaries || cmd_build
  command -v curl >/dev/null || die "curl is not on PATH"
  local t0
  t0=$(now)
  if [[ -d "$STATE" ]]; then
    # Only ever wipe a directory this script made (or an empty one).
    if [[ ! -e "$STATE/.svcdisc-testenv" && ! (-f "$PORTS_FILE" && -d "$PKI") && -n "$(ls -A "$STATE")" ]]; then
      die "$STATE exists and was not made by $0; refusing to wipe it"
    fi
    stop_proc kube-apiserver 2>/dev/null
    stop_proc etcd 2>/dev/null
    rm -rf "$STATE"
  fi
  mkdir -p "$STATE" "$STATE/etcd-data" "$STATE/apiserver-certs"
  echo "state dir of $SCRIPT; wiped by '$0 start'" >"$STATE/.svcdisc-testenv"
  chmod 0700 "$STATE/etcd-data"
  make_certs
  read -r ETCD_PORT ETCD_PEER_PORT APISERVER_PORT < <(free_ports 3)
  # The flags go in the ports file too, so that start-apiserver and start-etcd restart
  # the processes as start made them, whatever their own environment says.
  printf 'ETCD_PORT=%s\nETCD_PEER_PORT=%s\nAPISERVER_PORT=%s\nSERVICE_CIDR=%q\nAPISERVER_EXTRA=%q\nETCD_EXTRA=%q\n' \
    "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$SERVICE_CIDR" "$APISERVER_EXTRA" "$ETCD_EXTRA" >"$PORTS_FILE"
  write_kubeconfig
  if ! start_etcd_proc; then
    stop_proc etcd
    die "etcd failed to start (logs in $STATE)"
  fi
  if ! start_apiserver_proc; then
    stop_proc kube-apiserver
    stop_proc etcd
    die "kube-apiserver failed to start (logs in $STATE)"
  fi
  write_env
  log "test environment up in $(since "$t0"); state in $STATE"
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
  echo "# or: set -a; source $ENV_FILE; set +a"
}

cmd_stop() {
  [[ -d "$STATE" ]] || { log "no state dir $STATE; nothing to stop"; return 0; }
  stop_proc kube-apiserver
  stop_proc etcd
  [[ -f "$PORTS_FILE" ]] && { load_ports; write_env; }
  return 0
}

cmd_stop_apiserver() {
  [[ -d "$STATE" ]] || { log "no state dir $STATE; nothing to stop"; return 0; }
  stop_proc kube-apiserver
  [[ -f "$PORTS_FILE" ]] && { load_ports; write_env; }
  return 0
}

cmd_start_apiserver() {
  load_ports
  have_binaries || die "binaries missing in $BIN_DIR: run '$0 build'"
  if pid=$(alive kube-apiserver); then
    log "kube-apiserver already running (pid $pid)"
  elif ! start_apiserver_proc; then
    stop_proc kube-apiserver
    write_env
    die "kube-apiserver failed to restart (logs in $STATE)"
  fi
  write_env
}

cmd_stop_etcd() {
  [[ -d "$STATE" ]] || { log "no state dir $STATE; nothing to stop"; return 0; }
  stop_proc etcd
  [[ -f "$PORTS_FILE" ]] && { load_ports; write_env; }
  return 0
}

cmd_start_etcd() {
  load_ports
  have_binaries || die "binaries missing in $BIN_DIR: run '$0 build'"
  if pid=$(alive etcd); then
    log "etcd already running (pid $pid)"
  elif ! start_etcd_proc; then
    stop_proc etcd
    write_env
    die "etcd failed to restart (logs in $STATE)"
  fi
  write_env
}

cmd_status() {
  local rc=0 pid name
  [[ -f "$PORTS_FILE" ]] && load_ports
  for name in etcd kube-apiserver; do
    if pid=$(alive "$name"); then
      echo "$name: running (pid $pid)"
    else
      echo "$name: stopped"
      rc=3
    fi
  done
  if [[ -f "$PORTS_FILE" ]]; then
    echo "apiserver: https://127.0.0.1:$APISERVER_PORT  etcd: http://127.0.0.1:$ETCD_PORT"
    echo "kubeconfig: $KUBECONFIG_FILE"
  fi
  echo "binaries: $BIN_DIR ($(have_binaries && echo cached || echo 'not built'))"
  return $rc
}

usage() {
  sed -n '2,/^# See hack/p' "$SCRIPT" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  stop-apiserver) cmd_stop_apiserver ;;
  start-apiserver) cmd_start_apiserver ;;
  stop-etcd) cmd_stop_etcd ;;
  start-etcd) cmd_start_etcd ;;
  status) cmd_status ;;
  mod) shift; cmd_mod "$@" ;;
  -h | --help | help) usage ;;
  *) usage ;;
esac
