package zones_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/svcdisc/svcdisc/zones"
)

func FuzzParseManifests(f *testing.F) {
	err := filepath.WalkDir(manifestTestdata, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f.Add(filepath.Ext(path), data)
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(".yaml", []byte("apiVersion: v1\nkind: List\nitems:\n- kind: ServiceList\n  apiVersion: v1\n  items:\n  - metadata: {name: a}\n    spec: {clusterIP: 10.0.0.1}\n"))
	f.Add(".json", []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"status":{"podIPs":[{"ip":"fd00::1"}]}}`))
	f.Fuzz(func(t *testing.T, ext string, data []byte) {
		file := "fuzz" + ext
		objs, skipped, err := zones.ParseManifests(file, data)
		if err != nil {
			if objs != nil || skipped != nil {
				t.Errorf("error %v with objects %d, skipped %d", err, len(objs), len(skipped))
			}
			if !strings.HasPrefix(err.Error(), file+": ") {
				t.Errorf("error %q does not start with the file name", err)
			}
			if strings.Contains(err.Error(), "internal error while decoding") {
				t.Errorf("decoder panicked: %v", err)
			}
			return
		}
		keys := make(map[zones.Key]bool)
		for _, o := range objs {
			if o == nil {
				t.Fatal("nil object")
			}
			k := o.Key()
			if keys[k] {
				t.Errorf("object %s twice", k)
			}
			keys[k] = true
			if k.Name == "" || (k.Kind != zones.KindNamespace && k.Namespace == "") {
				t.Errorf("object with an empty name or namespace: %s", k)
			}
		}
		for _, s := range skipped {
			if !strings.HasPrefix(s.Error(), file+": document ") {
				t.Errorf("skipped %q does not name file and document", s)
			}
		}
	})
}
