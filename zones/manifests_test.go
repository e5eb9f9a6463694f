package zones_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcdisc/svcdisc/zones"
)

const manifestTestdata = "testdata/manifests"

func manifestKeys(objs []zones.Object) []string {
	keys := make([]string, 0, len(objs))
	for _, o := range objs {
		keys = append(keys, o.Key().String())
	}
	return keys
}

func TestParseManifests(t *testing.T) {
	tests := []struct {
		name        string
		file        string // in testdata/manifests, when data is empty
		data        string
		want        []string // keys, in order
		wantSkipped []string // one substring per skipped object, in order
		wantErr     string   // substring of the error
	}{
		{
			name: "multi-document YAML keeps only DNS kinds and defaults the namespace",
			file: "multi.yaml",
			want: []string{"Service default/cart", "EndpointSlice default/cart-abcde", "Namespace shop", "Pod shop/cart-0"},
		},
		{
			name: "JSON object",
			file: "service.json",
			want: []string{"Service backend/api"},
		},
		{
			name: "JSON stream skips null",
			file: "stream.json",
			want: []string{"Namespace one", "Namespace two", "Namespace three"},
		},
		{
			name: "List with a nested List",
			file: "list.yaml",
			want: []string{"Service front/web", "Namespace front", "Service front/db"},
		},
		{
			name: "typed list items take their kind from the list",
			file: "servicelist.json",
			want: []string{"Service default/kubernetes", "Service kube-system/kube-dns"},
		},
		{
			name:    "YAML error names file and document",
			file:    "broken-doc3.yaml",
			wantErr: "testdata/manifests/broken-doc3.yaml: document 3: error converting YAML to JSON: yaml: line 4: mapping values are not allowed in this context",
		},
		{
			name:    "JSON error names document, line and column",
			file:    "broken.json",
			wantErr: "testdata/manifests/broken.json: document 1: json: line 4, column 3: invalid character '\"' after object key:value pair",
		},
		{
			name:    "document without kind",
			file:    "missing-kind.yaml",
			wantErr: `testdata/manifests/missing-kind.yaml: document 2: missing "kind"`,
		},
		{
			name:    "field of the wrong type",
			file:    "bad-field.yaml",
			wantErr: "testdata/manifests/bad-field.yaml: document 1: Service default/web: json: cannot unmarshal string into Go struct field",
		},
		{
			name: "objects DNS cannot publish are skipped, not fatal",
			file: "skipped.yaml",
			want: []string{"Service default/good"},
			wantSkipped: []string{
				"testdata/manifests/skipped.yaml: document 1: endpointslice default/orphan: no kubernetes.io/service-name label",
				"testdata/manifests/skipped.yaml: document 2: service default/by-ip: externalName",
				"testdata/manifests/skipped.yaml: document 4: discovery.k8s.io/v1beta1 EndpointSlice",
				"testdata/manifests/skipped.yaml: document 3: Service default/good is defined again in document 5, which wins",
			},
		},
		{name: "empty file", file: "x.yaml", data: " "},
		{name: "only separators and comments", file: "x.yaml", data: "---\n# nothing\n---\n---\n"},
		{
			name:    "document numbers count documents with content",
			file:    "x.yaml",
			data:    "# header\n---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n# c\n---\napiVersion: v1\n",
			wantErr: `x.yaml: document 2: missing "kind"`,
		},
		{
			name:    "missing apiVersion",
			file:    "x.yaml",
			data:    "kind: Service\nmetadata: {name: a}\n",
			wantErr: `x.yaml: document 1: missing "apiVersion"`,
		},
		{
			name:    "not a mapping",
			file:    "x.yaml",
			data:    "- a\n- b\n",
			wantErr: "x.yaml: document 1: not an object",
		},
		{
			name:    "kind that is not a string",
			file:    "x.json",
			data:    `{"apiVersion": "v1", "kind": 5}`,
			wantErr: `x.json: document 1: "kind" must be a string`,
		},
		{
			name:    "bad separator",
			file:    "x.yaml",
			data:    "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n--- nope\n",
			wantErr: "x.yaml: document 2: invalid Yaml document separator: nope",
		},
		{
			name:    "second flow mapping without a separator",
			file:    "x.yaml",
			data:    "{apiVersion: v1, kind: Namespace, metadata: {name: a}}\n{apiVersion: v1, kind: Namespace, metadata: {name: b}}\n",
			wantErr: "x.yaml: document 1: error converting YAML to JSON: yaml: content after the end of the document",
		},
		{
			name: "YAML flow mapping",
			file: "x.yaml",
			data: "{apiVersion: v1, kind: Namespace, metadata: {name: flow}}\n",
			want: []string{"Namespace flow"},
		},
		{
			name:    "JSON stream broken after its first document",
			file:    "x.yaml",
			data:    `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}} {"kind"}`,
			wantErr: "x.yaml: document 2: json: line 1, column 8: invalid character '}' after object key",
		},
		{
			name:    "List item without kind",
			file:    "x.yaml",
			data:    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n- metadata: {name: b}\n",
			wantErr: `x.yaml: document 1: items[1]: missing "kind"`,
		},
		{
			name:    "List whose items are not a list",
			file:    "x.yaml",
			data:    "apiVersion: v1\nkind: List\nitems: 3\n",
			wantErr: `x.yaml: document 1: "items" is not a list`,
		},
		{
			name: "other kind ending in List is ignored",
			file: "x.yaml",
			data: "apiVersion: example.com/v1\nkind: ShoppingList\nitems: {milk: 1}\n",
		},
		{
			name:    "lists nested too deeply",
			file:    "x.json",
			data:    strings.Repeat(`{"apiVersion": "v1", "kind": "List", "items": [`, 40) + strings.Repeat("]}", 40),
			wantErr: "lists nested too deeply",
		},
		{
			name:        "object without a name is skipped",
			file:        "x.yaml",
			data:        "apiVersion: v1\nkind: Namespace\nmetadata: {}\n",
			wantSkipped: []string{"x.yaml: document 1: Namespace has no metadata.name"},
		},
		{
			name: "Pod without an address is left out silently",
			file: "x.yaml",
			data: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {phase: Pending}\n",
		},
		{
			name: "byte order mark and CRLF line ends",
			file: "x.yaml",
			data: "\xef\xbb\xbfapiVersion: v1\r\nkind: Namespace\r\nmetadata: {name: a}\r\n---\r\napiVersion: v1\r\nkind: Namespace\r\nmetadata: {name: b}\r\n",
			want: []string{"Namespace a", "Namespace b"},
		},
		{
			name: "names are lower-cased",
			file: "x.yaml",
			data: "apiVersion: v1\nkind: Service\nmetadata: {name: Web, namespace: Shop}\nspec: {clusterIP: 10.96.0.1}\n",
			want: []string{"Service shop/web"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, data := tt.file, []byte(tt.data)
			if tt.data == "" {
				file = manifestTestdata + "/" + tt.file
				var err error
				if data, err = os.ReadFile(file); err != nil {
					t.Fatal(err)
				}
			}
			objs, skipped, err := zones.ParseManifests(file, data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if objs != nil || skipped != nil {
					t.Errorf("failed call returned objects %v, skipped %v", manifestKeys(objs), skipped)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := manifestKeys(objs); !slices.Equal(got, tt.want) && len(got)+len(tt.want) > 0 {
				t.Errorf("objects = %q, want %q", got, tt.want)
			}
			if len(skipped) != len(tt.wantSkipped) {
				t.Fatalf("skipped = %v, want %d", skipped, len(tt.wantSkipped))
			}
			for i, s := range skipped {
				if !strings.Contains(s.Error(), tt.wantSkipped[i]) {
					t.Errorf("skipped[%d] = %v, want it to contain %q", i, s, tt.wantSkipped[i])
				}
			}
		})
	}
}

func TestParseManifestsConvertsObjects(t *testing.T) {
	data, err := os.ReadFile(manifestTestdata + "/multi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, _, err := zones.ParseManifests("multi.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	want := []zones.Object{
		&zones.Service{
			Namespace:  "default",
			Name:       "cart",
			Type:       zones.ClusterIP,
			ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
			Ports:      []zones.Port{{Name: "http", Protocol: "tcp", Port: 80}},
		},
		(&zones.EndpointSlice{
			Namespace: "default",
			Name:      "cart-abcde",
			Service:   "cart",
			Ports:     []zones.Port{{Name: "http", Protocol: "tcp", Port: 8080}},
		}).WithEndpoints(zones.Endpoint{
			Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1")},
			Name:      "cart-0",
			PodName:   true,
			Ready:     true,
		}),
		&zones.Namespace{Name: "shop"},
		&zones.Pod{Namespace: "shop", Name: "cart-0", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, Running: true},
	}
	if !reflect.DeepEqual(objs, want) {
		t.Errorf("objects:\n got %#v\nwant %#v", objs, want)
	}
}

// manifestSink is a Sink that records what it is given.
type manifestSink struct {
	mu       sync.Mutex
	replaces [][]zones.Object
	synced   bool
	// syncedBeforeReplace is set if MarkSynced came before any Replace.
	syncedBeforeReplace bool
}

func (s *manifestSink) Replace(objs []zones.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replaces = append(s.replaces, objs)
}

func (s *manifestSink) MarkSynced() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.replaces) == 0 {
		s.syncedBeforeReplace = true
	}
	s.synced = true
}

// state returns the number of Replace calls, the keys of the last and
// whether MarkSynced was called.
func (s *manifestSink) state() (n int, keys []string, synced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.replaces) > 0 {
		keys = manifestKeys(s.replaces[len(s.replaces)-1])
	}
	return len(s.replaces), keys, s.synced
}

func (s *manifestSink) last() []zones.Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.replaces) == 0 {
		return nil
	}
	return s.replaces[len(s.replaces)-1]
}

// waitKeys waits until the last Replace delivered keys, failing after a
// second.
func (s *manifestSink) waitKeys(t *testing.T, keys ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		_, got, _ := s.state()
		if slices.Equal(got, keys) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 1s the sink holds %q, want %q", got, keys)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// manifestLog is a concurrency-safe log buffer.
type manifestLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *manifestLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *manifestLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *manifestLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func manifestNamespace(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", name)
}

func manifestService(name, ip string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  clusterIP: %s\n", name, ip)
}

func writeManifest(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceManifest writes content to path the way editors and Kubernetes do:
// to a temporary file, then renamed over path.
func replaceManifest(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeManifest(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// configMapVolume lays out files in dir as the kubelet lays out a ConfigMap
// volume: a timestamped directory, a ..data link to it, and a link per file
// into ..data. Called again, it swaps in new contents atomically.
func configMapVolume(t *testing.T, dir, version string, files map[string]string) {
	t.Helper()
	ts := "..2024_01_01_00_00_00." + version
	for name, content := range files {
		writeManifest(t, filepath.Join(dir, ts, name), content)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			t.Fatal(err)
		}
	}
}

func TestManifestsLoad(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the path to load
		want    []string
		wantErr []string // substrings of Load's error; none if empty
		errs    []string // paths in Errors(), relative to dir
	}{
		{
			name: "directory tree, recursively, in path order",
			setup: func(t *testing.T, dir string) string {
				writeManifest(t, filepath.Join(dir, "b.yaml"), manifestNamespace("b"))
				writeManifest(t, filepath.Join(dir, "a", "z.json"), `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "az"}}`)
				writeManifest(t, filepath.Join(dir, "a", "deeper", "c.yml"), manifestNamespace("adc"))
				writeManifest(t, filepath.Join(dir, "a.yaml"), manifestNamespace("a"))
				writeManifest(t, filepath.Join(dir, "notes.txt"), "not: read\n")
				writeManifest(t, filepath.Join(dir, ".hidden.yaml"), manifestNamespace("hidden"))
				writeManifest(t, filepath.Join(dir, ".git", "x.yaml"), manifestNamespace("git"))
				return dir
			},
			want: []string{"Namespace a", "Namespace adc", "Namespace az", "Namespace b"},
		},
		{
			name: "ConfigMap volume layout",
			setup: func(t *testing.T, dir string) string {
				configMapVolume(t, dir, "1", map[string]string{
					"shop.yaml":  manifestService("cart", "10.96.0.10"),
					"ns.json":    `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}`,
					"README.txt": "hello",
				})
				return dir
			},
			want: []string{"Namespace shop", "Service default/cart"},
		},
		{
			name: "symbolic links to files and directories are followed, loops are not",
			setup: func(t *testing.T, dir string) string {
				other := t.TempDir()
				writeManifest(t, filepath.Join(other, "real.yaml"), manifestNamespace("linked-file"))
				writeManifest(t, filepath.Join(other, "sub", "x.yaml"), manifestNamespace("linked-dir"))
				root := filepath.Join(dir, "root")
				if err := os.MkdirAll(root, 0o755); err != nil {
					t.Fatal(err)
				}
				for link, target := range map[string]string{
					"file.yaml": filepath.Join(other, "real.yaml"),
					"sub":       filepath.Join(other, "sub"),
					"loop":      root,
				} {
					if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
						t.Fatal(err)
					}
				}
				return root
			},
			want: []string{"Namespace linked-file", "Namespace linked-dir"},
		},
		{
			name: "single file",
			setup: func(t *testing.T, dir string) string {
				writeManifest(t, filepath.Join(dir, "other.yaml"), manifestNamespace("other"))
				writeManifest(t, filepath.Join(dir, "manifests.txt"), manifestNamespace("one"))
				return filepath.Join(dir, "manifests.txt")
			},
			want: []string{"Namespace one"},
		},
		{
			name: "the file that sorts later wins a duplicate",
			setup: func(t *testing.T, dir string) string {
				writeManifest(t, filepath.Join(dir, "a.yaml"), manifestService("web", "10.96.0.1")+"---\n"+manifestNamespace("a"))
				writeManifest(t, filepath.Join(dir, "b.yaml"), manifestService("web", "10.96.0.2"))
				return dir
			},
			want: []string{"Namespace a", "Service default/web"},
		},
		{
			name: "a broken file fails Load but the good files are delivered",
			setup: func(t *testing.T, dir string) string {
				writeManifest(t, filepath.Join(dir, "good.yaml"), manifestNamespace("good"))
				writeManifest(t, filepath.Join(dir, "bad.yaml"), manifestNamespace("x")+"---\nkind: [\n")
				return dir
			},
			want:    []string{"Namespace good"},
			wantErr: []string{"bad.yaml: document 2: error converting YAML to JSON"},
			errs:    []string{"bad.yaml"},
		},
		{
			name: "a dangling link is an unreadable file",
			setup: func(t *testing.T, dir string) string {
				writeManifest(t, filepath.Join(dir, "good.yaml"), manifestNamespace("good"))
				if err := os.Symlink("nowhere.yaml", filepath.Join(dir, "dangling.yaml")); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want:    []string{"Namespace good"},
			wantErr: []string{"dangling.yaml: no such file or directory"},
			errs:    []string{"dangling.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			sink := &manifestSink{}
			m := zones.NewManifests(path, sink, slog.New(slog.NewTextHandler(t.Output(), nil)))
			err := m.Load()
			switch {
			case len(tt.wantErr) == 0 && err != nil:
				t.Fatalf("Load: %v", err)
			case len(tt.wantErr) > 0 && err == nil:
				t.Fatalf("Load succeeded, want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error %q does not contain %q", err, w)
				}
			}
			n, keys, synced := sink.state()
			if n != 1 || !synced || sink.syncedBeforeReplace {
				t.Errorf("got %d Replace calls, synced %v (before Replace: %v); want 1, then synced", n, synced, sink.syncedBeforeReplace)
			}
			if !slices.Equal(keys, tt.want) {
				t.Errorf("objects = %q, want %q", keys, tt.want)
			}
			var errs []string
			for p := range m.Errors() {
				rel, _ := filepath.Rel(dir, p)
				errs = append(errs, rel)
			}
			slices.Sort(errs)
			if !slices.Equal(errs, tt.errs) {
				t.Errorf("Errors() has %q, want %q", errs, tt.errs)
			}
		})
	}
}

func TestManifestsLoadDuplicateTakesLaterFile(t *testing.T) {
	dir := t.TempDir()
	writeManifest(t, filepath.Join(dir, "a.yaml"), manifestService("web", "10.96.0.1"))
	writeManifest(t, filepath.Join(dir, "b.yaml"), manifestService("web", "10.96.0.2"))
	var log manifestLog
	sink := &manifestSink{}
	if err := zones.NewManifests(dir, sink, log.logger()).Load(); err != nil {
		t.Fatal(err)
	}
	svc, ok := sink.last()[0].(*zones.Service)
	if !ok || svc.ClusterIPs[0] != netip.MustParseAddr("10.96.0.2") {
		t.Errorf("got %#v, want the Service of b.yaml", sink.last()[0])
	}
	if l := log.String(); !strings.Contains(l, "a.yaml") || !strings.Contains(l, "b.yaml") || !strings.Contains(l, "more than one file") {
		t.Errorf("log does not name both files:\n%s", l)
	}
}

func TestManifestsLoadMissingPath(t *testing.T) {
	sink := &manifestSink{}
	m := zones.NewManifests(filepath.Join(t.TempDir(), "nope"), sink, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err := m.Load(); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load = %v, want a not-exist error", err)
	}
	if n, _, synced := sink.state(); n != 0 || synced {
		t.Errorf("got %d Replace calls and synced %v, want nothing delivered", n, synced)
	}
	if len(m.Errors()) != 1 {
		t.Errorf("Errors() = %v, want the path", m.Errors())
	}
}

// runManifests loads path and runs a source on it until the test ends.
func runManifests(t *testing.T, path string, log *manifestLog) (*zones.Manifests, *manifestSink) {
	t.Helper()
	sink := &manifestSink{}
	m := zones.NewManifests(path, sink, log.logger())
	_ = m.Load() // some tests start broken
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	return m, sink
}

// waitErrors waits until Errors() holds exactly the paths, failing after a
// second.
func waitErrors(t *testing.T, m *zones.Manifests, paths ...string) map[string]error {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		errs := m.Errors()
		var got []string
		for p := range errs {
			got = append(got, p)
		}
		slices.Sort(got)
		if slices.Equal(got, paths) {
			return errs
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 1s Errors() holds %q, want %q", got, paths)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestManifestsRun(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, dir string, log *manifestLog)
	}{
		{
			name: "an edit shows",
			run: func(t *testing.T, dir string, log *manifestLog) {
				f := filepath.Join(dir, "a.yaml")
				writeManifest(t, f, manifestNamespace("one"))
				_, sink := runManifests(t, dir, log)
				sink.waitKeys(t, "Namespace one")
				writeManifest(t, f, manifestNamespace("two"))
				sink.waitKeys(t, "Namespace two")
			},
		},
		{
			name: "a new file, in a new directory too, shows",
			run: func(t *testing.T, dir string, log *manifestLog) {
				writeManifest(t, filepath.Join(dir, "a.yaml"), manifestNamespace("a"))
				_, sink := runManifests(t, dir, log)
				sink.waitKeys(t, "Namespace a")
				writeManifest(t, filepath.Join(dir, "b.json"), `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}`)
				sink.waitKeys(t, "Namespace a", "Namespace b")
				writeManifest(t, filepath.Join(dir, "c", "d", "e.yaml"), manifestNamespace("cde"))
				sink.waitKeys(t, "Namespace a", "Namespace b", "Namespace cde")
				// The new directory is watched now.
				writeManifest(t, filepath.Join(dir, "c", "d", "e.yaml"), manifestNamespace("cde2"))
				sink.waitKeys(t, "Namespace a", "Namespace b", "Namespace cde2")
			},
		},
		{
			name: "a deleted file takes its objects",
			run: func(t *testing.T, dir string, log *manifestLog) {
				writeManifest(t, filepath.Join(dir, "a.yaml"), manifestNamespace("a"))
				writeManifest(t, filepath.Join(dir, "sub", "b.yaml"), manifestNamespace("b"))
				_, sink := runManifests(t, dir, log)
				sink.waitKeys(t, "Namespace a", "Namespace b")
				if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
					t.Fatal(err)
				}
				sink.waitKeys(t, "Namespace b")
				if err := os.RemoveAll(filepath.Join(dir, "sub")); err != nil {
					t.Fatal(err)
				}
				sink.waitKeys(t)
			},
		},
		{
			name: "a broken edit keeps the old objects until fixed",
			run: func(t *testing.T, dir string, log *manifestLog) {
				f := filepath.Join(dir, "a.yaml")
				writeManifest(t, f, manifestService("web", "10.96.0.1")+"---\n"+manifestNamespace("a"))
				writeManifest(t, filepath.Join(dir, "b.yaml"), manifestNamespace("b"))
				m, sink := runManifests(t, dir, log)
				sink.waitKeys(t, "Service default/web", "Namespace a", "Namespace b")
				before, _, _ := sink.state()

				// Renamed into place: a rescan must not catch a half-written
				// file, which would be a legitimate change.
				replaceManifest(t, f, manifestService("web", "10.96.0.1")+"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a: b\n")
				errs := waitErrors(t, m, f)
				if msg := errs[f].Error(); !strings.Contains(msg, f+": document 2: error converting YAML to JSON") {
					t.Errorf("Errors()[%s] = %q, want it to name the file and document 2", f, msg)
				}
				if n, _, _ := sink.state(); n != before {
					t.Errorf("a broken edit caused a Replace: %q", manifestKeys(sink.last()))
				}
				if !strings.Contains(log.String(), "document=2") {
					t.Errorf("the log does not name the document:\n%s", log)
				}

				// The other files still work meanwhile.
				writeManifest(t, filepath.Join(dir, "b.yaml"), manifestNamespace("b2"))
				sink.waitKeys(t, "Service default/web", "Namespace a", "Namespace b2")

				writeManifest(t, f, manifestNamespace("fixed"))
				sink.waitKeys(t, "Namespace fixed", "Namespace b2")
				waitErrors(t, m)
				if !strings.Contains(log.String(), "recovered") {
					t.Errorf("the log does not say the file recovered:\n%s", log)
				}
			},
		},
		{
			name: "an unreadable file keeps its objects",
			run: func(t *testing.T, dir string, log *manifestLog) {
				f := filepath.Join(dir, "a.yaml")
				writeManifest(t, f, manifestNamespace("a"))
				m, sink := runManifests(t, dir, log)
				sink.waitKeys(t, "Namespace a")
				// Root reads a file whatever its mode; a symlink loop is
				// unreadable to everyone.
				unreadable := func() error { return os.Chmod(f, 0) }
				readable := func() error { return os.Chmod(f, 0o644) }
				if os.Geteuid() == 0 {
					unreadable = func() error {
						tmp := filepath.Join(dir, ".loop")
						if err := os.Symlink("a.yaml", tmp); err != nil {
							return err
						}
						return os.Rename(tmp, f)
					}
					readable = func() error {
						replaceManifest(t, f, manifestNamespace("a"))
						return nil
					}
				}
				if err := unreadable(); err != nil {
					t.Fatal(err)
				}
				waitErrors(t, m, f)
				sink.waitKeys(t, "Namespace a")
				if err := readable(); err != nil {
					t.Fatal(err)
				}
				waitErrors(t, m)
			},
		},
		{
			name: "a single file replaced by rename",
			run: func(t *testing.T, dir string, log *manifestLog) {
				f := filepath.Join(dir, "one.yaml")
				writeManifest(t, f, manifestNamespace("one"))
				writeManifest(t, filepath.Join(dir, "other.yaml"), manifestNamespace("other"))
				m, sink := runManifests(t, f, log)
				sink.waitKeys(t, "Namespace one")
				replaceManifest(t, f, manifestNamespace("two"))
				sink.waitKeys(t, "Namespace two")
				// Other files in the directory are none of its business.
				writeManifest(t, filepath.Join(dir, "other.yaml"), manifestNamespace("other2"))
				replaceManifest(t, f, manifestNamespace("three"))
				sink.waitKeys(t, "Namespace three")
				// A missing single file keeps what it had.
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
				waitErrors(t, m, f)
				sink.waitKeys(t, "Namespace three")
				writeManifest(t, f, manifestNamespace("four"))
				sink.waitKeys(t, "Namespace four")
				waitErrors(t, m)
			},
		},
		{
			name: "a ConfigMap volume update shows",
			run: func(t *testing.T, dir string, log *manifestLog) {
				configMapVolume(t, dir, "1", map[string]string{"shop.yaml": manifestNamespace("v1")})
				_, sink := runManifests(t, dir, log)
				sink.waitKeys(t, "Namespace v1")
				configMapVolume(t, dir, "2", map[string]string{"shop.yaml": manifestNamespace("v2")})
				sink.waitKeys(t, "Namespace v2")
				if err := os.RemoveAll(filepath.Join(dir, "..2024_01_01_00_00_00.1")); err != nil {
					t.Fatal(err)
				}
				configMapVolume(t, dir, "3", map[string]string{"shop.yaml": manifestNamespace("v3")})
				sink.waitKeys(t, "Namespace v3")
			},
		},
		{
			name: "a single file in a ConfigMap volume",
			run: func(t *testing.T, dir string, log *manifestLog) {
				configMapVolume(t, dir, "1", map[string]string{"shop.yaml": manifestNamespace("v1")})
				_, sink := runManifests(t, filepath.Join(dir, "shop.yaml"), log)
				sink.waitKeys(t, "Namespace v1")
				configMapVolume(t, dir, "2", map[string]string{"shop.yaml": manifestNamespace("v2")})
				sink.waitKeys(t, "Namespace v2")
			},
		},
		{
			name: "edits behind links to elsewhere show",
			run: func(t *testing.T, dir string, log *manifestLog) {
				other := t.TempDir()
				writeManifest(t, filepath.Join(other, "file.yaml"), manifestNamespace("file"))
				writeManifest(t, filepath.Join(other, "sub", "x.yaml"), manifestNamespace("sub"))
				if err := os.Symlink(filepath.Join(other, "file.yaml"), filepath.Join(dir, "file.yaml")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(other, "sub"), filepath.Join(dir, "sub")); err != nil {
					t.Fatal(err)
				}
				_, sink := runManifests(t, dir, log)
				sink.waitKeys(t, "Namespace file", "Namespace sub")
				replaceManifest(t, filepath.Join(other, "file.yaml"), manifestNamespace("file2"))
				sink.waitKeys(t, "Namespace file2", "Namespace sub")
				writeManifest(t, filepath.Join(other, "sub", "x.yaml"), manifestNamespace("sub2"))
				sink.waitKeys(t, "Namespace file2", "Namespace sub2")
			},
		},
		{
			name: "a directory that appears after Run started",
			run: func(t *testing.T, dir string, log *manifestLog) {
				root := filepath.Join(dir, "manifests")
				m, sink := runManifests(t, root, log)
				waitErrors(t, m, root)
				writeManifest(t, filepath.Join(dir, "staging", "a.yaml"), manifestNamespace("a"))
				if err := os.Rename(filepath.Join(dir, "staging"), root); err != nil {
					t.Fatal(err)
				}
				sink.waitKeys(t, "Namespace a")
				if _, _, synced := sink.state(); !synced {
					t.Error("the sink was not marked synced")
				}
				waitErrors(t, m)
				writeManifest(t, filepath.Join(root, "b.yaml"), manifestNamespace("b"))
				sink.waitKeys(t, "Namespace a", "Namespace b")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log manifestLog
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("log:\n%s", log.String())
				}
			})
			tt.run(t, t.TempDir(), &log)
		})
	}
}

func TestManifestsRunReturnsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := zones.NewManifests(t.TempDir(), &manifestSink{}, nil)
	if err := m.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

func TestManifestsRunDeliversOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.yaml")
	writeManifest(t, f, manifestNamespace("a"))
	var log manifestLog
	m, sink := runManifests(t, dir, &log)
	sink.waitKeys(t, "Namespace a")
	before, _, _ := sink.state()
	// Same objects, different bytes; then a broken file elsewhere, which
	// shows the rescans happened.
	replaceManifest(t, f, "# a comment\n"+manifestNamespace("a"))
	replaceManifest(t, filepath.Join(dir, "z.yaml"), "kind: [\n")
	waitErrors(t, m, filepath.Join(dir, "z.yaml"))
	if n, _, _ := sink.state(); n != before {
		t.Errorf("%d Replace calls for changes that did not change the objects", n-before)
	}
}
