package envgen

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
)

// FuzzWebhook sends arbitrary bodies to /mutate. Whatever arrives, the
// handler answers (no panic); a 200 carries a response for the request's
// UID; a patch is valid JSON Patch that applies to the object sent, and
// applying the webhook to its result changes nothing more.
func FuzzWebhook(f *testing.F) {
	files, _ := filepath.Glob("testdata/webhook/*.request.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","operation":"CREATE","namespace":"shop","resource":{"version":"v1","resource":"pods"},"object":{"spec":{"containers":[{"name":"a","env":[{"name":"WEB_SERVICE_HOST"}],"envFrom":[{"prefix":"W","configMapRef":{"name":"c"}}]}]}}}}`))
	h, _ := testWebhook(f)
	h.Observe = nil
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body)))
		if rec.Code != http.StatusOK {
			return
		}
		// Read the request as the handler does (a RawExtension keeps the
		// first of "object" and a later "Object": null, a json.RawMessage
		// would not).
		var in admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
			t.Fatalf("200 for a body that does not decode: %v", err)
		}
		var out struct {
			Response struct {
				UID     string
				Allowed bool
				Patch   []byte
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("response is not JSON: %v", err)
		}
		if out.Response.UID != string(in.Request.UID) || !out.Response.Allowed {
			t.Fatalf("response %+v for uid %q", out.Response, in.Request.UID)
		}
		if out.Response.Patch == nil {
			return
		}
		p, err := jsonpatch.DecodePatch(out.Response.Patch)
		if err != nil {
			t.Fatalf("patch does not decode: %v\n%s", err, out.Response.Patch)
		}
		patched, err := p.Apply(in.Request.Object.Raw)
		if err != nil {
			t.Fatalf("patch does not apply: %v\n%s", err, out.Response.Patch)
		}
		res, err := h.Mutator.Mutate(in.Request.Namespace, patched)
		if err != nil {
			t.Fatalf("patched pod does not decode: %v", err)
		}
		if res.Patch != nil {
			t.Fatalf("second pass patched again: %s", res.Patch)
		}
	})
}
