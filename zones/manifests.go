package zones

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Sink receives the objects of a source. A Zone is one.
type Sink interface {
	// Replace makes objs the complete set of objects, as after a relist.
	// The sink owns the slice but must not modify the objects.
	Replace(objs []Object)
	// MarkSynced says the first complete set has been delivered.
	MarkSynced()
}

const (
	// manifestDebounce is how long the tree must be quiet after a change
	// before it is read again.
	manifestDebounce = 100 * time.Millisecond
	// manifestMaxDelay bounds how long a steady stream of changes can put
	// off a rescan.
	manifestMaxDelay = 500 * time.Millisecond
)

// Manifests is an object source reading Kubernetes manifests from a file or
// a directory tree of .yaml, .yml and .json files (see ParseManifests), and
// watching them for changes.
//
// A directory is walked recursively, following symbolic links; names that
// start with "." are skipped, which also skips the "..data" and timestamped
// directories of a ConfigMap or Secret volume while the top-level links into
// them are followed. A file that stops parsing, or cannot be read, keeps the
// objects it held before, so a broken edit never empties the zone; a file
// that goes away takes its objects with it. When the path itself cannot be
// read (a missing single file, say), everything is kept. When two files hold
// the same object, the file whose path sorts later wins.
//
// The sink receives the union of all files' objects, ordered by file path
// and then by position in the file, whenever it changes.
type Manifests struct {
	path string
	sink Sink
	log  *slog.Logger

	mu        sync.Mutex // serialises scans; guards the fields below
	files     map[string]*manifestFile
	dups      map[Key]string // duplicates last warned about, as their files
	errSigs   map[string]string
	last      []Object // the last set delivered
	delivered bool
	synced    bool
	// For a sink that takes single changes (a Zone does): the files that
	// define each object, the objects delivered, and the objects each
	// file held at the last delivery, so a change to one file is passed
	// on as the changes to its objects, not as the whole tree again.
	objs map[Key]objState
	sent map[string][]Object

	errMu sync.Mutex
	errs  map[string]error
}

// objState is what the source knows of one object: the files that define
// it (usually one) and the object the sink was last given (nil: none).
type objState struct {
	files []string
	sent  Object
}

// manifestFile is what is known of one file.
type manifestFile struct {
	hash     [sha256.Size]byte // of the bytes last parsed
	parsed   bool              // hash is set
	objs     []Object          // from the last successful parse
	parseErr error             // of the bytes in hash
	readErr  error             // of the last read
	size     int64             // and modification time, at the last read
	mtime    time.Time
}

// manifestMtimeSlack: a file modified this recently is read even when size
// and time look unchanged, since a write within the file system's time
// granularity would not show in them.
const manifestMtimeSlack = 2 * time.Second

func (f *manifestFile) err() error {
	if f.readErr != nil {
		return f.readErr
	}
	return f.parseErr
}

// NewManifests returns a source for path, a file or a directory, feeding
// sink. A nil sink discards the objects, which leaves a checker of the tree.
// log may be nil, for slog.Default().
func NewManifests(path string, sink Sink, log *slog.Logger) *Manifests {
	if log == nil {
		log = slog.Default()
	}
	if sink == nil {
		sink = manifestDiscardSink{}
	}
	return &Manifests{
		path:    filepath.Clean(path),
		sink:    sink,
		log:     log,
		files:   make(map[string]*manifestFile),
		dups:    make(map[Key]string),
		errSigs: make(map[string]string),
		errs:    make(map[string]error),
	}
}

type manifestDiscardSink struct{}

func (manifestDiscardSink) Replace([]Object) {}
func (manifestDiscardSink) MarkSynced()      {}

// Load reads everything once and delivers it: sink.Replace, then
// sink.MarkSynced the first time. It returns an error if the path cannot be
// read, in which case nothing is delivered, and also if any file or
// directory under it cannot be read or parsed, after delivering the objects
// of the good files: a broken tree at startup should be loud.
func (m *Manifests) Load() error {
	_, err := m.scan()
	return err
}

// Errors returns the current problems, by path: files that do not parse or
// cannot be read, unreadable directories, and the path itself if it cannot
// be read. It is empty when all is well.
func (m *Manifests) Errors() map[string]error {
	m.errMu.Lock()
	defer m.errMu.Unlock()
	out := make(map[string]error, len(m.errs))
	for k, v := range m.errs {
		out[k] = v
	}
	return out
}

// Run watches the path until ctx is done, delivering the complete set again
// (sink.Replace) shortly after changes settle. It reads the tree once when it
// starts, and delivers and marks the sink synced if Load did not. It returns
// ctx.Err() when ctx is done, or an error if it cannot watch at all.
func (m *Manifests) Run(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("manifests %s: %w", m.path, err)
	}
	defer w.Close()

	watches := make(map[string]manifestWatch)
	rescan := func() {
		// What changed in a directory before its watch was added raised
		// no event: read again until the watches stand.
		for range 5 {
			want, _ := m.scan()
			if !m.rewatch(w, watches, want) {
				return
			}
		}
	}
	rescan()
	if len(w.WatchList()) == 0 {
		return fmt.Errorf("manifests %s: nothing can be watched", m.path)
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var pending bool
	var first time.Time
	schedule := func() {
		now := time.Now()
		if !pending {
			pending, first = true, now
		}
		d := min(manifestDebounce, max(first.Add(manifestMaxDelay).Sub(now), 0))
		timer.Reset(d)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("manifests %s: watcher closed", m.path)
			}
			if manifestRelevant(watches, ev.Name) {
				schedule()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("manifests %s: watcher closed", m.path)
			}
			// Most likely an overflow: events were lost, read everything.
			m.log.Warn("manifests: watch error", "path", m.path, "err", err)
			schedule()
		case <-timer.C:
			pending = false
			rescan()
		}
	}
}

// manifestWatch says which events of a watched directory matter: all, or
// those of the named entries (and of Kubernetes' "..data" and friends).
type manifestWatch struct {
	all   bool
	names map[string]bool
}

func manifestRelevant(watches map[string]manifestWatch, name string) bool {
	if w, ok := watches[name]; ok && w.all {
		return true // the watched directory itself
	}
	w, ok := watches[filepath.Dir(name)]
	if !ok {
		return false
	}
	base := filepath.Base(name)
	return w.all || w.names[base] || strings.HasPrefix(base, "..")
}

// rewatch makes the watcher watch the directories of want. It reports
// whether it added a watch, after which the tree must be read again: what
// changed before the watch was in place raised no event.
func (m *Manifests) rewatch(w *fsnotify.Watcher, have, want map[string]manifestWatch) (added bool) {
	watching := make(map[string]bool)
	for _, p := range w.WatchList() {
		watching[p] = true
	}
	for p := range have {
		if _, ok := want[p]; !ok {
			delete(have, p)
			if watching[p] {
				_ = w.Remove(p) // it may be gone already
			}
		}
	}
	for p, ww := range want {
		if !watching[p] {
			if err := w.Add(p); err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					m.log.Warn("manifests: cannot watch", "path", p, "err", err)
				}
				delete(have, p)
				continue
			}
			added = true
		}
		have[p] = ww
	}
	return added
}

// scan reads the tree, re-parses the files whose bytes changed, records the
// problems and delivers the union if it changed. It returns the directories
// to watch, and every problem joined.
func (m *Manifests) scan() (map[string]manifestWatch, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	l := m.list()
	errs := make(map[string]error)
	present := make(map[string]bool)
	if l.rootErr != nil {
		// Nothing can be told about the files: keep them all.
		errs[m.path] = l.rootErr
		for f, st := range m.files {
			if err := st.err(); err != nil {
				errs[f] = err
			}
		}
		m.setErrs(errs, present)
		return l.watches, joinManifestErrors(errs)
	}
	present[m.path] = true
	for _, f := range l.files {
		present[f] = true
		m.read(f)
	}
	for d := range l.dirs {
		present[d] = true
	}
	for f := range m.files {
		if !present[f] && !l.underBrokenDir(f) {
			delete(m.files, f)
		}
	}
	for d, err := range l.dirErrs {
		errs[d] = err
	}
	for f, st := range m.files {
		if err := st.err(); err != nil {
			errs[f] = err
		}
	}
	m.deliver()
	m.setErrs(errs, present)
	return l.watches, joinManifestErrors(errs)
}

// read reads file f and parses it if its bytes changed.
func (m *Manifests) read(f string) {
	st := m.files[f]
	if st == nil {
		st = &manifestFile{}
		m.files[f] = st
	}
	// A file whose size and modification time did not change is not read
	// again: a change to one file must not cost a pass over the whole tree.
	fi, err := os.Stat(f)
	if err == nil && st.parsed && st.readErr == nil && fi.Size() == st.size && fi.ModTime().Equal(st.mtime) &&
		time.Since(st.mtime) > manifestMtimeSlack {
		return
	}
	data, err := os.ReadFile(f)
	if err != nil {
		st.readErr = err
		return
	}
	st.readErr = nil
	if fi != nil {
		st.size, st.mtime = fi.Size(), fi.ModTime()
	}
	h := sha256.Sum256(data)
	if st.parsed && h == st.hash {
		return
	}
	st.hash, st.parsed = h, true
	objs, skipped, err := ParseManifests(f, data)
	for _, s := range skipped {
		m.log.Warn("manifests: skipping object", "file", f, "err", s)
	}
	if err != nil {
		st.parseErr = err
		return
	}
	st.objs, st.parseErr = objs, nil
}

// setErrs records the current problems, logging each new one once and each
// one that went away.
func (m *Manifests) setErrs(errs map[string]error, present map[string]bool) {
	sigs := make(map[string]string, len(errs))
	for p, err := range errs {
		sig := err.Error()
		if st := m.files[p]; st != nil && st.readErr == nil {
			// Say it again for every broken edit, even one that breaks
			// the same way.
			sig += fmt.Sprintf(" %x", st.hash)
		}
		sigs[p] = sig
		if m.errSigs[p] == sig {
			continue
		}
		var me *manifestError
		if errors.As(err, &me) {
			m.log.Warn("manifests: cannot parse file, keeping its previous objects",
				"file", p, "document", me.doc, "err", err)
		} else {
			m.log.Warn("manifests: cannot read", "path", p, "err", err)
		}
	}
	for p := range m.errSigs {
		if _, ok := sigs[p]; !ok && present[p] {
			m.log.Info("manifests: recovered", "path", p)
		}
	}
	m.errSigs = sigs
	m.errMu.Lock()
	m.errs = errs
	m.errMu.Unlock()
}

// joinManifestErrors joins errs in path order, nil if there are none.
func joinManifestErrors(errs map[string]error) error {
	if len(errs) == 0 {
		return nil
	}
	paths := make([]string, 0, len(errs))
	for p := range errs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	list := make([]error, 0, len(paths))
	for _, p := range paths {
		list = append(list, errs[p])
	}
	return errors.Join(list...)
}

// deliver hands the union of the files' objects to the sink if it changed.
// eventSink is a sink that takes single changes.
type eventSink interface {
	Update(Object)
	Delete(Key)
}

func (m *Manifests) deliver() {
	if es, ok := m.sink.(eventSink); ok && m.delivered {
		m.deliverChanges(es)
		return
	}
	union := m.union()
	// Files that did not change keep their objects, which compare at once
	// by pointer; only a re-parsed file's are compared field by field.
	if m.delivered && reflect.DeepEqual(union, m.last) {
		return
	}
	m.last, m.delivered = union, true
	if _, ok := m.sink.(eventSink); ok {
		m.objs = make(map[Key]objState, len(union))
		m.sent = make(map[string][]Object, len(m.files))
		for p, st := range m.files {
			m.sent[p] = st.objs
			for _, o := range st.objs {
				m.own(o.Key(), p, true)
			}
		}
		for _, o := range union {
			st := m.objs[o.Key()]
			st.sent = o
			m.objs[o.Key()] = st
		}
	}
	m.sink.Replace(slices.Clone(union))
	if !m.synced {
		m.synced = true
		m.sink.MarkSynced()
	}
}

// own records that file p defines (or, with has false, no longer defines)
// the object under k.
func (m *Manifests) own(k Key, p string, has bool) {
	st := m.objs[k]
	i := slices.Index(st.files, p)
	switch {
	case has && i < 0:
		st.files = append(st.files, p)
	case !has && i >= 0:
		st.files = slices.Delete(slices.Clone(st.files), i, i+1)
	default:
		return
	}
	m.setState(k, st)
}

// setState stores st, or forgets k when st holds nothing.
func (m *Manifests) setState(k Key, st objState) {
	if len(st.files) == 0 && st.sent == nil {
		delete(m.objs, k)
		return
	}
	m.objs[k] = st
}

// deliverChanges passes on what changed since the last delivery, file by
// file: each object of a changed file is looked at again (its winner among
// the files that define it may be another file now), nothing else. The
// cost is that of the changed files, whatever the size of the tree.
func (m *Manifests) deliverChanges(es eventSink) {
	affected := make(map[Key]bool)
	touch := func(p string, objs []Object, has bool) {
		for _, o := range objs {
			k := o.Key()
			affected[k] = true
			m.own(k, p, has)
		}
	}
	for p, old := range m.sent {
		st := m.files[p]
		var now []Object
		if st != nil {
			now = st.objs
		}
		if sameObjects(old, now) {
			continue
		}
		touch(p, old, false)
		touch(p, now, true)
		if st == nil {
			delete(m.sent, p)
		} else {
			m.sent[p] = now
		}
	}
	for p, st := range m.files {
		if _, ok := m.sent[p]; !ok {
			m.sent[p] = st.objs // a new file
			touch(p, st.objs, true)
		}
	}
	for k := range affected {
		m.redeliver(es, k)
	}
}

// redeliver settles one object after its files changed: the file that sorts
// last among those defining it wins, and the sink hears of a change only.
func (m *Manifests) redeliver(es eventSink, k Key) {
	st := m.objs[k]
	var winner string
	for _, p := range st.files {
		winner = max(winner, p)
	}
	if n := len(st.files); n > 1 {
		losers := make([]string, 0, n-1)
		for _, p := range st.files {
			if p != winner {
				losers = append(losers, p)
			}
		}
		sort.Strings(losers)
		if sig := strings.Join(losers, "\x00") + "\x00" + winner; m.dups[k] != sig {
			m.dups[k] = sig
			m.log.Warn("manifests: object defined in more than one file, the file that sorts last wins",
				"object", k.String(), "files", losers, "winner", winner)
		}
	} else {
		delete(m.dups, k)
	}
	var obj Object
	if winner != "" {
		for _, o := range m.files[winner].objs {
			if o.Key() == k {
				obj = o // the last in the file, as union keeps it
			}
		}
	}
	prev := st.sent
	switch {
	case obj == nil && prev != nil:
		st.sent = nil
		m.setState(k, st)
		es.Delete(k)
	case obj != nil && (prev == nil || !reflect.DeepEqual(prev, obj)):
		st.sent = obj
		m.setState(k, st)
		es.Update(obj)
	}
}

// sameObjects reports whether a and b are the same objects, by identity: a
// file that was not parsed again keeps its slice.
func sameObjects(a, b []Object) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// union returns the objects of all files, by file path and then position,
// an object defined in several files only from the file that sorts last. It
// warns of such duplicates when they change.
func (m *Manifests) union() []Object {
	paths := make([]string, 0, len(m.files))
	for p := range m.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	winner := make(map[Key]string)
	for _, p := range paths {
		for _, o := range m.files[p].objs {
			winner[o.Key()] = p
		}
	}
	out := make([]Object, 0, len(winner))
	losers := make(map[Key][]string)
	for _, p := range paths {
		for _, o := range m.files[p].objs {
			k := o.Key()
			if w := winner[k]; w != p {
				losers[k] = append(losers[k], p)
				continue
			}
			out = append(out, o)
		}
	}
	dups := make(map[Key]string, len(losers))
	for k, ls := range losers {
		w := winner[k]
		sig := strings.Join(ls, "\x00") + "\x00" + w
		dups[k] = sig
		if m.dups[k] != sig {
			m.log.Warn("manifests: object defined in more than one file, the file that sorts last wins",
				"object", k.String(), "files", ls, "winner", w)
		}
	}
	m.dups = dups
	return out
}

// manifestListing is what a walk of the path found.
type manifestListing struct {
	files   []string
	dirs    map[string]bool  // read
	dirErrs map[string]error // could not be read
	rootErr error
	watches map[string]manifestWatch
}

func (l *manifestListing) watchAll(dir string) {
	l.watches[dir] = manifestWatch{all: true}
}

func (l *manifestListing) watchName(dir, name string) {
	w := l.watches[dir]
	if w.all {
		return
	}
	if w.names == nil {
		w.names = make(map[string]bool)
	}
	w.names[name] = true
	l.watches[dir] = w
}

// underBrokenDir reports whether f is inside a directory that could not be
// read, so whether it still exists is unknown.
func (l *manifestListing) underBrokenDir(f string) bool {
	for d := range l.dirErrs {
		if strings.HasPrefix(f, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// list finds the files to read and the directories to watch.
func (m *Manifests) list() *manifestListing {
	l := &manifestListing{
		dirs:    make(map[string]bool),
		dirErrs: make(map[string]error),
		watches: make(map[string]manifestWatch),
	}
	// The parent notices the path being created, replaced or renamed.
	l.watchName(filepath.Dir(m.path), filepath.Base(m.path))
	fi, err := os.Stat(m.path)
	if err != nil {
		l.rootErr = err
		return l
	}
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			l.rootErr = fmt.Errorf("%s: not a regular file or a directory", m.path)
			return l
		}
		l.files = []string{m.path}
		l.watchTarget(m.path)
		return l
	}
	visited := make(map[string]bool)
	l.walk(m.path, visited, true)
	sort.Strings(l.files)
	// inotify has one watch per directory whatever the path: a link
	// target that is also a walked directory is watched as that.
	for p, w := range l.watches {
		if !w.all && visited[p] {
			delete(l.watches, p)
		}
	}
	return l
}

// watchTarget watches the directory of the file a symbolic link points to,
// when that is elsewhere.
func (l *manifestListing) watchTarget(link string) {
	real, err := filepath.EvalSymlinks(link)
	if err != nil || filepath.Dir(real) == filepath.Dir(link) {
		return
	}
	l.watchName(filepath.Dir(real), filepath.Base(real))
}

func manifestFileName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func (l *manifestListing) walk(dir string, visited map[string]bool, root bool) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir
	}
	if visited[real] {
		return // a link cycle
	}
	visited[real] = true
	entries, err := os.ReadDir(dir)
	if err != nil {
		if root {
			l.rootErr = err
		} else {
			l.dirErrs[dir] = err
		}
		return
	}
	l.dirs[dir] = true
	l.watchAll(dir)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(dir, name)
		mode := e.Type()
		if mode&fs.ModeSymlink != 0 {
			fi, err := os.Stat(p)
			if err != nil {
				if manifestFileName(name) {
					l.files = append(l.files, p) // reading it reports the problem
				}
				continue
			}
			mode = fi.Mode().Type()
			if !fi.IsDir() {
				l.watchTarget(p)
			}
		}
		switch {
		case mode.IsDir():
			l.walk(p, visited, false)
		case mode.IsRegular() && manifestFileName(name):
			l.files = append(l.files, p)
		}
	}
}
