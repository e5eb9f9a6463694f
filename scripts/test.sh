#!/usr/bin/env bash
# The whole svcdisc test suite: formatting and vet, every test with the race
# detector, and each fuzz target for a short bounded time (FUZZTIME).
# Needs only Go. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-15s}

echo "--- gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt needed:"; echo "$unformatted"; exit 1
fi
echo "--- go vet"
go vet ./...
echo "--- go test -race"
go test -race -count=1 ./...
echo "--- fuzz ($FUZZTIME each)"
go test -run='^$' -fuzz='^FuzzHandler$' -fuzztime="$FUZZTIME" ./resolver
go test -run='^$' -fuzz='^FuzzParseManifests$' -fuzztime="$FUZZTIME" ./zones
go test -run='^$' -fuzz='^FuzzParse$' -fuzztime="$FUZZTIME" ./config
echo "--- ok"
