package envgen

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/webhook")

func testWebhook(t testing.TB) (*Webhook, *[]string) {
	store := storeOf(t, []corev1.Service{
		svc("default", "kubernetes", []string{"10.96.0.1"}, port("https", "", 443)),
		svc("shop", "web", []string{"10.96.0.20"}, port("http", "", 80), port("metrics", corev1.ProtocolTCP, 9090)),
		svc("shop", "db", []string{"fd00:10:96::15"}, port("", "", 5432)),
		svc("shop", "headless", []string{"None"}, port("", "", 80)),
		svc("other", "cache", []string{"10.96.0.30"}, port("redis", "", 6379)),
	})
	var results []string
	return &Webhook{
		Mutator: &Mutator{Store: store, Limits: DefaultLimits},
		Observe: func(result string, injected, warnings int, d time.Duration) {
			results = append(results, result)
		},
	}, &results
}

// TestWebhookGolden sends each testdata/webhook/*.request.json and compares
// the answer with the matching .response.json. Run with -update to rewrite
// them after a deliberate change, and read the diff.
func TestWebhookGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/webhook/*.request.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden requests: %v", err)
	}
	h, _ := testWebhook(t)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".request.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body)))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			// The golden file shows the patch decoded, so a diff reads.
			var resp map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			golden := map[string]any{"review": resp}
			if r, _ := resp["response"].(map[string]any); r != nil {
				if p, ok := r["patch"].(string); ok {
					raw, err := base64.StdEncoding.DecodeString(p)
					if err != nil {
						t.Fatal(err)
					}
					var ops any
					if err := json.Unmarshal(raw, &ops); err != nil {
						t.Fatalf("patch is not JSON: %v", err)
					}
					r["patch"] = "(decoded below)"
					golden["patch"] = ops
				}
			}
			out, err := json.MarshalIndent(golden, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			pretty := bytes.NewBuffer(append(out, '\n'))
			file := strings.TrimSuffix(f, ".request.json") + ".response.json"
			if *update {
				if err := os.WriteFile(file, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("response differs from %s:\n%s", file, pretty.Bytes())
			}
		})
	}
}

func TestWebhookBadInput(t *testing.T) {
	h, results := testWebhook(t)
	h.MaxBody = 4096
	good, err := os.ReadFile("testdata/webhook/pod-create.request.json")
	if err != nil {
		t.Fatal(err)
	}
	review := func(req string) string {
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":` + req + `}`
	}
	tests := []struct {
		name    string
		method  string
		body    string
		status  int
		says    string // in the HTTP body or, for 200, in the warnings
		allowed bool
	}{
		{"GET is not allowed", http.MethodGet, "", http.StatusMethodNotAllowed, "POST an AdmissionReview", false},
		{"not JSON", http.MethodPost, "not json", http.StatusBadRequest, "decode AdmissionReview", false},
		{"truncated JSON", http.MethodPost, string(good[:len(good)/2]), http.StatusBadRequest, "decode AdmissionReview", false},
		{"wrong kind", http.MethodPost, `{"apiVersion":"v1","kind":"Pod"}`, http.StatusBadRequest, `got kind "Pod" apiVersion "v1"`, false},
		{"v1beta1 review", http.MethodPost, `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`, http.StatusBadRequest, "expected AdmissionReview admission.k8s.io/v1", false},
		{"missing request", http.MethodPost, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest, "no request", false},
		{"oversized body", http.MethodPost, `{"x":"` + strings.Repeat("a", 5000) + `"}`, http.StatusRequestEntityTooLarge, "over 4096 bytes", false},
		{"pod object that is not a pod", http.MethodPost, review(`{"uid":"u1","operation":"CREATE","namespace":"shop","kind":{"version":"v1","kind":"Pod"},"resource":{"version":"v1","resource":"pods"},"object":[1,2]}`),
			http.StatusOK, "pod left unchanged: decode pod", true},
		{"pod with a wrongly typed field", http.MethodPost, review(`{"uid":"u2","operation":"CREATE","namespace":"shop","resource":{"version":"v1","resource":"pods"},"object":{"spec":{"containers":"no"}}}`),
			http.StatusOK, "pod left unchanged", true},
		{"pod without an object", http.MethodPost, review(`{"uid":"u3","operation":"CREATE","namespace":"shop","resource":{"version":"v1","resource":"pods"}}`),
			http.StatusOK, "pod left unchanged", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/mutate", strings.NewReader(tt.body)))
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status != http.StatusOK {
				if !strings.Contains(rec.Body.String(), tt.says) {
					t.Errorf("body %q does not say %q", rec.Body, tt.says)
				}
			} else {
				var out struct {
					Response struct {
						UID      string
						Allowed  bool
						Patch    []byte
						Warnings []string
					}
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
					t.Fatal(err)
				}
				r := out.Response
				if r.Allowed != tt.allowed || r.Patch != nil || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], tt.says) || r.UID == "" {
					t.Errorf("response %+v, want allowed=%v, no patch, a warning saying %q", r, tt.allowed, tt.says)
				}
			}
			// The server keeps serving.
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(good)))
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"patch"`) {
				t.Fatalf("a good request after it failed: %d %s", rec.Code, rec.Body)
			}
		})
	}
	if len(*results) != 2*len(tests) {
		t.Errorf("observer saw %d requests, want %d", len(*results), 2*len(tests))
	}
}
