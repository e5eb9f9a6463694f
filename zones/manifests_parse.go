package zones

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	yamlv2 "go.yaml.in/yaml/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// manifestMaxListDepth bounds how deeply Lists may nest inside each other.
const manifestMaxListDepth = 32

// ParseManifests decodes the bytes of one manifest file: a stream of YAML
// documents separated by "---" lines, or of JSON objects. A List (kind List,
// or any kind ending in List that has items) contributes its items, and
// Lists may nest. The items of a typed list such as ServiceList may leave out
// apiVersion and kind, which they then take from the list.
//
// It returns the slim objects of the kinds a Zone consumes (core/v1 Service,
// Pod and Namespace; discovery.k8s.io/v1 EndpointSlice), in document order,
// and ignores every other kind. A Service, Pod or EndpointSlice without a
// namespace is in namespace "default". Documents holding nothing (only a
// separator, or comments) are skipped and not counted: document n is the
// n-th document with content.
//
// A document that does not decode (bad syntax, no apiVersion or kind, a
// field of the wrong type) fails the whole call: err names file, document
// number and reason, and objs and skipped are nil. An object that decodes but
// that DNS cannot publish (FromObject fails, or it has no name) is left out
// and reported in skipped, one error per object naming file and document;
// so is the earlier of two objects with the same Key in the file, the later
// one winning. A Pod with no address to publish is left out silently.
func ParseManifests(file string, data []byte) (objs []Object, skipped []error, err error) {
	p := manifestParser{file: file}
	if err := p.parse(data); err != nil {
		return nil, nil, err
	}
	last := make(map[Key]int, len(p.objs))
	for i, o := range p.objs {
		last[o.obj.Key()] = i
	}
	for i, o := range p.objs {
		k := o.obj.Key()
		if w := last[k]; w != i {
			winner := p.objs[w]
			where := fmt.Sprintf("document %d", winner.doc)
			if winner.at != "" {
				where += " " + winner.at
			}
			p.skip(o.doc, o.at, fmt.Errorf("%s is defined again in %s, which wins", k, where))
			continue
		}
		objs = append(objs, o.obj)
	}
	return objs, p.skipped, nil
}

// manifestError is a problem with one manifest file, or one document or
// object in it.
type manifestError struct {
	file string
	doc  int    // 1-based document number; 0 if not about one document
	at   string // where in the document, like "items[2]"; may be empty
	err  error
}

func (e *manifestError) Error() string {
	var b strings.Builder
	b.WriteString(e.file)
	if e.doc > 0 {
		fmt.Fprintf(&b, ": document %d", e.doc)
	}
	if e.at != "" {
		b.WriteString(": ")
		b.WriteString(e.at)
	}
	b.WriteString(": ")
	b.WriteString(e.err.Error())
	return b.String()
}

func (e *manifestError) Unwrap() error { return e.err }

// manifestObject is an object found in a file, with where it was found.
type manifestObject struct {
	obj Object
	doc int
	at  string
}

type manifestParser struct {
	file    string
	doc     int // the document being decoded
	objs    []manifestObject
	skipped []error
}

func (p *manifestParser) errorf(doc int, at string, err error) error {
	return &manifestError{file: p.file, doc: doc, at: at, err: err}
}

func (p *manifestParser) skip(doc int, at string, err error) {
	p.skipped = append(p.skipped, p.errorf(doc, at, err))
}

var manifestBOM = []byte("\xef\xbb\xbf")

func (p *manifestParser) parse(data []byte) (err error) {
	defer func() {
		// The decoders are third-party code fed arbitrary bytes: a panic
		// there must fail this file, not the server.
		if r := recover(); r != nil {
			p.objs = nil
			err = p.errorf(p.doc, "", fmt.Errorf("internal error while decoding: %v", r))
		}
	}()
	data = bytes.TrimPrefix(data, manifestBOM)
	if !manifestLooksJSON(data) {
		return p.parseYAML(data)
	}
	jerr := p.parseJSON(data)
	var syn *manifestSyntaxError
	if jerr == nil || !errors.As(jerr, &syn) || p.doc > 0 || strings.EqualFold(filepath.Ext(p.file), ".json") {
		// Valid JSON, a JSON stream broken after its first document, or
		// a .json file: the JSON answer stands.
		return jerr
	}
	// Not JSON from the start, and not named JSON: it may be YAML whose
	// first document is a flow mapping.
	p.objs, p.skipped, p.doc = nil, nil, 0
	return p.parseYAML(data)
}

// manifestSyntaxError marks a file that is not a valid JSON stream.
type manifestSyntaxError struct{ err error }

func (e *manifestSyntaxError) Error() string { return e.err.Error() }
func (e *manifestSyntaxError) Unwrap() error { return e.err }

// manifestLooksJSON reports whether data starts, after white space, with "{".
func manifestLooksJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

func (p *manifestParser) parseJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := dec.InputOffset()
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return p.errorf(p.doc+1, "", &manifestSyntaxError{manifestJSONSyntaxError(data, start, err)})
		}
		if manifestIsNull(raw) {
			continue
		}
		p.doc++
		if err := p.object(p.doc, "", raw, 0, ""); err != nil {
			return err
		}
	}
}

// manifestJSONSyntaxError adds to a syntax error the line and column where it is,
// counted from the start of the document that starts at or after start.
func manifestJSONSyntaxError(data []byte, start int64, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) || se.Offset < start || se.Offset > int64(len(data)) {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("json: unexpected end of input")
		}
		return err
	}
	doc := data[start:]
	// Offset counts the bytes read, the bad one included.
	off := max(int(se.Offset-start)-1, 0)
	skip := len(doc) - len(bytes.TrimLeft(doc, " \t\r\n"))
	if skip <= off {
		doc, off = doc[skip:], off-skip
	}
	before := doc[:off]
	line := 1 + bytes.Count(before, []byte("\n"))
	col := off - bytes.LastIndexByte(before, '\n')
	return fmt.Errorf("json: line %d, column %d: %w", line, col, err)
}

func manifestIsNull(js []byte) bool {
	t := bytes.TrimSpace(js)
	return len(t) == 0 || string(t) == "null"
}

func (p *manifestParser) parseYAML(data []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		chunk, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			// A bad separator: the reader drops the document it ends, if
			// any, and the error is about the one it starts.
			n := p.doc + 1
			if manifestPendingContent(data) {
				n++
			}
			return p.errorf(n, "", err)
		}
		js, err := yaml.YAMLToJSON(chunk)
		if err == nil {
			err = manifestYAMLTrailing(chunk)
		}
		if err != nil {
			p.doc++
			return p.errorf(p.doc, "", fmt.Errorf("error converting YAML to JSON: %w", err))
		}
		if manifestIsNull(js) {
			continue
		}
		p.doc++
		if err := p.object(p.doc, "", js, 0, ""); err != nil {
			return err
		}
	}
}

// manifestPendingContent reports whether the document ended by the first
// bad separator line ("---" followed by something other than a comment)
// holds anything but comments.
func manifestPendingContent(data []byte) bool {
	content := false
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("---")); ok {
			rest = bytes.TrimSpace(rest)
			if len(rest) > 0 && rest[0] != '#' {
				return content
			}
			content = false
			continue
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			content = true
		}
	}
	return content
}

// manifestYAMLTrailing fails if a YAML document has content after its end,
// which YAMLToJSON silently drops: a second flow mapping after the first, or
// a document after a "..." line.
func manifestYAMLTrailing(doc []byte) error {
	d := yamlv2.NewDecoder(bytes.NewReader(doc))
	var v any
	if err := d.Decode(&v); err != nil {
		if err == io.EOF {
			return nil
		}
		return err
	}
	switch err := d.Decode(&v); err {
	case io.EOF:
		return nil
	case nil:
		return errors.New("yaml: more than one document: separate documents with a --- line")
	default:
		return errors.New("yaml: content after the end of the document (separate documents with a --- line)")
	}
}

// manifestHead is what every object says about itself.
type manifestHead struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   json.RawMessage `json:"metadata"`
	Items      json.RawMessage `json:"items"`
}

// object decodes one object, at path at in document doc. listType is the
// "apiVersion kind" of the typed list holding it, if any, which items
// without apiVersion and kind take.
func (p *manifestParser) object(doc int, at string, js []byte, depth int, listType string) error {
	t := bytes.TrimSpace(js)
	if len(t) == 0 || t[0] != '{' {
		return p.errorf(doc, at, errors.New("not an object: want a mapping with apiVersion and kind"))
	}
	var h manifestHead
	if err := utiljson.Unmarshal(t, &h); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			err = fmt.Errorf("%q must be a string, not %s", te.Field, te.Value)
		}
		return p.errorf(doc, at, err)
	}
	if h.APIVersion == "" && h.Kind == "" && listType != "" {
		h.APIVersion, h.Kind, _ = strings.Cut(listType, " ")
	}
	switch {
	case h.Kind == "":
		return p.errorf(doc, at, errors.New(`missing "kind"`))
	case h.APIVersion == "":
		return p.errorf(doc, at, errors.New(`missing "apiVersion"`))
	}

	if strings.HasSuffix(h.Kind, "List") && !manifestIsNull(h.Items) {
		items := bytes.TrimSpace(h.Items)
		if items[0] != '[' {
			if h.Kind == "List" {
				return p.errorf(doc, at, errors.New(`"items" is not a list`))
			}
			return nil // some other kind that happens to end in List
		}
		if depth >= manifestMaxListDepth {
			return p.errorf(doc, at, errors.New("lists nested too deeply"))
		}
		var list []json.RawMessage
		if err := json.Unmarshal(items, &list); err != nil {
			return p.errorf(doc, at, fmt.Errorf("items: %w", err))
		}
		inherit := ""
		if h.Kind != "List" {
			inherit = h.APIVersion + " " + strings.TrimSuffix(h.Kind, "List")
		}
		for i, item := range list {
			if manifestIsNull(item) {
				continue
			}
			sub := fmt.Sprintf("items[%d]", i)
			if at != "" {
				sub = at + "." + sub
			}
			if err := p.object(doc, sub, item, depth+1, inherit); err != nil {
				return err
			}
		}
		return nil
	}

	var obj interface {
		runtime.Object
		metav1.Object
	}
	namespaced := true
	switch {
	case h.APIVersion == "v1" && h.Kind == "Service":
		obj = &corev1.Service{}
	case h.APIVersion == "v1" && h.Kind == "Pod":
		obj = &corev1.Pod{}
	case h.APIVersion == "v1" && h.Kind == "Namespace":
		obj, namespaced = &corev1.Namespace{}, false
	case h.APIVersion == "discovery.k8s.io/v1" && h.Kind == "EndpointSlice":
		obj = &discoveryv1.EndpointSlice{}
	case h.Kind == "EndpointSlice" && strings.HasPrefix(h.APIVersion, discoveryv1.GroupName+"/"):
		p.skip(doc, at, fmt.Errorf("%s %s: only discovery.k8s.io/v1 EndpointSlices are read", h.APIVersion, h.Kind))
		return nil
	default:
		return nil // a kind DNS does not consume
	}
	if err := utiljson.Unmarshal(t, obj); err != nil {
		return p.errorf(doc, at, fmt.Errorf("%s %s: %w", h.Kind, manifestName(h.Metadata, namespaced), err))
	}
	if !namespaced {
		obj.SetNamespace("")
	} else if obj.GetNamespace() == "" {
		obj.SetNamespace(metav1.NamespaceDefault)
	}
	if obj.GetName() == "" {
		if namespaced {
			p.skip(doc, at, fmt.Errorf("%s in namespace %s has no metadata.name", h.Kind, obj.GetNamespace()))
		} else {
			p.skip(doc, at, fmt.Errorf("%s has no metadata.name", h.Kind))
		}
		return nil
	}
	o, err := FromObject(obj)
	if err != nil {
		p.skip(doc, at, err)
		return nil
	}
	if o != nil {
		p.objs = append(p.objs, manifestObject{obj: o, doc: doc, at: at})
	}
	return nil
}

// manifestName names an object that may not decode, for an error message.
func manifestName(meta json.RawMessage, namespaced bool) string {
	var m struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	_ = json.Unmarshal(meta, &m)
	name := m.Name
	if name == "" {
		name = "(no name)"
	}
	if !namespaced {
		return name
	}
	ns := m.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	return ns + "/" + name
}
