package zones

import "strings"

// slimObject is what the informers make of an API object as it arrives:
// the slim form DNS uses, which the zone keeps, and the object's key.
// Only this goes on from the decoder, so a large cluster is held once, as
// slim objects in the zone, and never as API objects.
type slimObject struct {
	obj  Object // nil when there is nothing to publish
	kind Kind
	// names are the namespace and name as the API server spells them,
	// kept only when obj does not spell them so: the API server's names
	// are lower case, as the zone's keys, so nearly every object reads
	// them from obj.
	names *[2]string
}

func newSlimObject(kind Kind, namespace, name string, obj Object) *slimObject {
	s := &slimObject{obj: obj, kind: kind}
	if obj == nil || obj.Key() != (Key{kind, namespace, name}) {
		s.names = &[2]string{namespace, name}
	}
	return s
}

// key is the zone's key of the object: names are lower case there.
func (s *slimObject) key() Key {
	if s.names == nil {
		return s.obj.Key()
	}
	return Key{s.kind, strings.ToLower(s.names[0]), strings.ToLower(s.names[1])}
}
