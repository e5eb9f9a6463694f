package zones_test

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/svcdisc/svcdisc/zones"
)

// eventRecorder is a sink that takes single changes, as a Zone does, and
// keeps the resulting set of objects.
type eventRecorder struct {
	objs     map[zones.Key]zones.Object
	replaces int
	events   int
}

func (r *eventRecorder) Replace(objs []zones.Object) {
	r.replaces++
	r.objs = make(map[zones.Key]zones.Object)
	for _, o := range objs {
		r.objs[o.Key()] = o // the last of a key wins, as in a Zone
	}
}
func (r *eventRecorder) MarkSynced()           {}
func (r *eventRecorder) Update(o zones.Object) { r.events++; r.objs[o.Key()] = o }
func (r *eventRecorder) Delete(k zones.Key)    { r.events++; delete(r.objs, k) }

// replaceRecorder takes whole sets only.
type replaceRecorder struct{ objs map[zones.Key]zones.Object }

func (r *replaceRecorder) Replace(objs []zones.Object) {
	r.objs = make(map[zones.Key]zones.Object)
	for _, o := range objs {
		r.objs[o.Key()] = o
	}
}
func (r *replaceRecorder) MarkSynced() {}

// TestManifestsChangesMatchFullDelivery edits a tree at random (files
// written, with objects defined in several files and twice in one, files
// removed, files broken) and checks after every step that the objects a
// sink of single changes holds are what whole deliveries give, and that
// only the first delivery was a whole set.
func TestManifestsChangesMatchFullDelivery(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	files := []string{"a.yaml", "b.yaml", "sub/c.yaml", "z.yaml"}
	content := func() string {
		var docs []string
		for range r.IntN(5) {
			n := r.IntN(6)
			if r.IntN(4) == 0 {
				docs = append(docs, manifestNamespace(fmt.Sprintf("ns-%d", n)))
				continue
			}
			docs = append(docs, manifestService(fmt.Sprintf("svc-%d", n), fmt.Sprintf("10.0.0.%d", 1+r.IntN(3))))
		}
		return strings.Join(docs, "---\n")
	}
	for _, f := range files {
		writeManifest(t, filepath.Join(dir, f), content())
	}
	rec := &eventRecorder{}
	m := zones.NewManifests(dir, rec, slog.New(slog.DiscardHandler))
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	// The reference reads the same tree through the same steps (a broken
	// file keeps what it had, so history matters) and delivers whole sets.
	full := &replaceRecorder{}
	ref := zones.NewManifests(dir, full, slog.New(slog.DiscardHandler))
	if err := ref.Load(); err != nil {
		t.Fatal(err)
	}
	for step := range 300 {
		f := filepath.Join(dir, files[r.IntN(len(files))])
		switch r.IntN(6) {
		case 0:
			os.Remove(f)
		case 1:
			replaceManifest(t, f, "kind: [\n") // broken: the file keeps what it had
		default:
			replaceManifest(t, f, content())
		}
		_ = m.Load() // a broken file is an error, and still a delivery
		_ = ref.Load()
		if !reflect.DeepEqual(rec.objs, full.objs) && !(len(rec.objs) == 0 && len(full.objs) == 0) {
			got, want := keyList(rec.objs), keyList(full.objs)
			t.Fatalf("step %d: single changes hold\n%v\nwant\n%v", step, got, want)
		}
	}
	if rec.replaces != 1 || rec.events == 0 {
		t.Errorf("%d whole deliveries and %d single changes: want 1 and many", rec.replaces, rec.events)
	}
}

func keyList(m map[zones.Key]zones.Object) []string {
	var out []string
	for k, o := range m {
		out = append(out, fmt.Sprintf("%s=%v", k, o))
	}
	slices.Sort(out)
	return out
}
