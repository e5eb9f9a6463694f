package envgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultMaxBody bounds an AdmissionReview body. The API server refuses
// requests over 3 MiB and etcd objects over 1.5 MiB, so a Pod review is
// well under it.
const DefaultMaxBody = 6 << 20

// Admission results, as counted by an Observer.
const (
	ResultPatched   = "patched"   // a patch was returned
	ResultUnchanged = "unchanged" // a Pod create that needed nothing
	ResultOptedOut  = "opted_out" // svcdisc.io/inject: "false"
	ResultIgnored   = "ignored"   // not a Pod create: allowed untouched
	ResultError     = "error"     // the Pod could not be read: allowed untouched
	ResultRejected  = "rejected"  // not an AdmissionReview: HTTP error
)

// Observer is told about each request to the webhook: its result, the
// variables injected, the warnings returned and how long it took.
type Observer func(result string, injected, warnings int, d time.Duration)

// Webhook is the mutating admission endpoint: it answers AdmissionReview
// admission.k8s.io/v1 requests for Pod creation with a JSON Patch. It
// never denies a request: whatever it cannot handle is allowed unchanged,
// with a warning, because env injection must not be the reason a Pod
// cannot be created.
type Webhook struct {
	Mutator *Mutator
	Log     *slog.Logger
	Observe Observer // may be nil
	// MaxBody bounds the request body; DefaultMaxBody when 0.
	MaxBody int64
}

var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	result, injected, warnings := h.serve(w, r)
	if h.Observe != nil {
		h.Observe(result, injected, warnings, time.Since(start))
	}
}

func (h *Webhook) serve(w http.ResponseWriter, r *http.Request) (result string, injected, warnings int) {
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: POST an AdmissionReview", http.StatusMethodNotAllowed)
		return ResultRejected, 0, 0
	}
	limit := h.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("request body over %d bytes", limit), http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "read request: "+err.Error(), http.StatusBadRequest)
		}
		return ResultRejected, 0, 0
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		http.Error(w, "decode AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return ResultRejected, 0, 0
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		http.Error(w, fmt.Sprintf("expected AdmissionReview %s, got kind %q apiVersion %q",
			admissionv1.SchemeGroupVersion, review.Kind, review.APIVersion), http.StatusBadRequest)
		return ResultRejected, 0, 0
	}
	req := review.Request
	if req == nil {
		http.Error(w, "AdmissionReview has no request", http.StatusBadRequest)
		return ResultRejected, 0, 0
	}

	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	result = ResultIgnored
	if req.Operation == admissionv1.Create && req.Resource == podResource && req.SubResource == "" {
		res, err := h.Mutator.Mutate(req.Namespace, req.Object.Raw)
		switch {
		case err != nil:
			result = ResultError
			log.Warn("webhook: pod left unchanged", "namespace", req.Namespace, "name", req.Name, "uid", req.UID, "err", err)
			resp.Warnings = []string{"svcdisc: pod left unchanged: " + err.Error()}
		case res.OptedOut:
			result = ResultOptedOut
		case res.Patch != nil:
			result = ResultPatched
			pt := admissionv1.PatchTypeJSONPatch
			resp.PatchType, resp.Patch = &pt, res.Patch
		default:
			result = ResultUnchanged
		}
		if err == nil {
			resp.Warnings = res.Warnings
		}
		injected = res.Injected
	}
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "encode AdmissionReview: "+err.Error(), http.StatusInternalServerError)
		return ResultRejected, 0, 0
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return result, injected, len(resp.Warnings)
}
