#!/usr/bin/env bash
# hack/vulncheck.sh - govulncheck over the whole module, pinned, and able to run where
# vuln.go.dev cannot be reached.
#
#   hack/vulncheck.sh
#
# The vulnerability database is vuln.go.dev when it answers. Otherwise it is built from
# golang.org/x/vulndb at VULNDB_VERSION: the Go module proxy serves that module, its
# data/osv holds the same reports, and vulndb's own indexer (cmd/indexdb) writes the
# database govulncheck reads with -db file://. The built database is cached in
# SVCDISC_VULNDB_CACHE (default ~/.cache/svcdisc-vulndb). Its age is the vulndb
# version's date, printed with the result: bump VULNDB_VERSION to see newer reports.
#
# Exit status: 0 when no vulnerability is reachable from our code; 1 for any reachable
# vulnerability, in a module we require or in the Go standard library of the toolchain
# (GOTOOLCHAIN, go1.27.3 as go.mod asks), or when govulncheck cannot run.
set -euo pipefail
# go.mod needs Go 1.27.3; the go command fetches it from the module proxy.
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
cd "$(dirname "$0")/.."

GOVULNCHECK=golang.org/x/vuln/cmd/govulncheck@v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
CACHE=${SVCDISC_VULNDB_CACHE:-$HOME/.cache/svcdisc-vulndb}

log() { printf '[vulncheck] %s\n' "$*" >&2; }

db_args=()
if curl -sfI --max-time 5 https://vuln.go.dev/index/db.json >/dev/null 2>&1; then
  log "database: vuln.go.dev"
else
  db=$CACHE/$VULNDB_VERSION
  if [[ ! -f $db/index/modules.json ]]; then
    log "vuln.go.dev unreachable: building the database from golang.org/x/vulndb@$VULNDB_VERSION (module proxy)"
    src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | awk -F'"' '$2 == "Dir" {print $4}')
    [[ -d $src/data/osv ]] || { log "golang.org/x/vulndb@$VULNDB_VERSION has no data/osv"; exit 1; }
    rm -rf "$db.tmp"
    mkdir -p "$CACHE"
    go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$db.tmp"
    rm -rf "$db"
    mv "$db.tmp" "$db"
  fi
  log "database: golang.org/x/vulndb@$VULNDB_VERSION, $(find "$db/ID" -name "*.json" | wc -l) reports (vuln.go.dev unreachable)"
  db_args=(-db "file://$db")
fi

# Installed, not run with go run: go run turns govulncheck's exit status 3 (findings)
# into 1.
bin=$CACHE/bin
GOBIN=$bin go install "$GOVULNCHECK"
rc=0
out=$("$bin/govulncheck" "${db_args[@]}" ./... 2>&1) || rc=$?
echo "$out"
case $rc in
  0) log "ok: no vulnerability reachable from svcdisc's code"; exit 0 ;;
  3) ;; # findings: classified below
  *) log "FAILED: govulncheck exited $rc"; exit 1 ;;
esac

# Findings reachable from our code come first in the output, before the package and
# module sections; "Found in: PATH@goX.Y.Z" marks the standard library.
found=$(awk '/^=== (Package|Module) Results/ {exit} /Found in:/ {print $3}' <<<"$out")
modules=$(grep -v '@go[0-9]' <<<"$found" || true)
if [[ -n $modules ]]; then
  log "FAILED: reachable vulnerabilities in modules we require:"
  sed 's/^/    /' <<<"$modules" >&2
  exit 1
fi
fixed=$(awk '/^=== (Package|Module) Results/ {exit} /Fixed in:/ {print $3}' <<<"$out" | sed 's/.*@//' | sort -uV | tail -1)
log "FAILED: the Go standard library of $(go env GOVERSION) has $(wc -l <<<"$found") reachable vulnerabilities, fixed in ${fixed:-a newer Go}: move GOTOOLCHAIN (scripts/test.sh, .ci/run, hack/lib.sh, Makefile, Dockerfile, README) and go.mod's go line to it"
exit 1
