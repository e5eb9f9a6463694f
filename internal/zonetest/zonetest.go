// Package zonetest builds cluster zones from manifest files for tests of
// the packages that answer from one.
package zonetest

import (
	"os"
	"testing"

	"github.com/svcdisc/svcdisc/zones"
)

// Objects reads the Kubernetes objects of a manifest file.
func Objects(t testing.TB, file string) []zones.Object {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, _, err := zones.ParseManifests(file, data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// Zone returns a synced zone of opts holding the objects of file.
func Zone(t testing.TB, file string, opts zones.Options) *zones.Zone {
	t.Helper()
	z := zones.New(opts)
	z.Replace(Objects(t, file))
	z.MarkSynced()
	return z
}
