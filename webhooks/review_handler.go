package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// maxReviewBytes bounds a request body: the API server caps an object at
// about 3 MiB, and an AdmissionReview carries it twice (object, oldObject).
const maxReviewBytes = 7 << 20

// ReviewHandler serves AdmissionReviews for one admission.Handler in a
// single decoding pass. controller-runtime's webhook.Admission decodes a
// review with the API machinery's deserializer (a validity scan, then the
// decode, then the object again in the handler): for a ten-container pod
// that was about two thirds of the CPU of a review. Here the review is
// decoded once by encoding/json/v2 (github.com/go-json-experiment/json,
// the standard library's encoding/json/v2 from Go 1.27), which keeps
// request.object as raw bytes for the handler's own slim decode.
//
// It answers as webhook.Admission does: HTTP 200 with an AdmissionReview
// for every well-formed POST, the request's UID echoed, errors as a
// response with the HTTP status in status.code; a panic in the handler
// becomes a 500 response, never a dropped connection.
type ReviewHandler struct {
	Handler admission.Handler
	Log     logr.Logger
}

var _ http.Handler = &ReviewHandler{}

func (h *ReviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "only POST is allowed", http.StatusMethodNotAllowed)
		return
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		h.write(w, nil, admission.Errored(http.StatusBadRequest, fmt.Errorf("contentType=%q, expected application/json", r.Header.Get("Content-Type"))))
		return
	}
	body, err := readBody(r)
	if err != nil {
		h.write(w, nil, admission.Errored(http.StatusBadRequest, fmt.Errorf("failed to read the request body: %w", err)))
		return
	}
	if len(body) > maxReviewBytes {
		h.write(w, nil, admission.Errored(http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", maxReviewBytes)))
		return
	}
	if len(body) == 0 {
		h.write(w, nil, admission.Errored(http.StatusBadRequest, errors.New("request body is empty")))
		return
	}
	review, err := decodeReview(body)
	if err != nil {
		h.write(w, review, admission.Errored(http.StatusBadRequest, err))
		return
	}
	ctx, cancel := requestDeadline(r)
	defer cancel()
	h.write(w, review, h.handle(ctx, admission.Request{AdmissionRequest: *review.Request}))
}

// requestDeadline is the request's context, ending a fifth before the API
// server's own timeout for this webhook (it sends it as ?timeout=5s), so
// that a review which cannot finish still answers in time, with its
// reason, instead of the API server's "context deadline exceeded".
func requestDeadline(r *http.Request) (context.Context, context.CancelFunc) {
	d, err := time.ParseDuration(r.URL.Query().Get("timeout"))
	if err != nil || d <= 0 {
		return context.WithCancel(r.Context())
	}
	return context.WithTimeout(r.Context(), d-d/5)
}

// handle calls the handler, turning a panic into an error response.
func (h *ReviewHandler) handle(ctx context.Context, req admission.Request) (resp admission.Response) {
	defer func() {
		if p := recover(); p != nil {
			h.Log.Error(fmt.Errorf("panic: %v", p), "admission handler panicked", "uid", req.UID, "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name)
			resp = admission.Errored(http.StatusInternalServerError, errors.New("loopguard failed to review the request (internal error); see its log"))
		}
	}()
	return h.Handler.Handle(ctx, req)
}

// readBody reads at most maxReviewBytes+1 bytes, in one allocation when the
// API server sends Content-Length (it does).
func readBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= maxReviewBytes {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, maxReviewBytes+1))
	return buf.Bytes(), err
}

// decodeOptions: names may repeat as encoding/json (v1) and the API
// machinery allow (checking costs about a tenth of the decode; the API
// server never repeats one); everything else is encoding/json/v2's strict
// default.
var decodeOptions = jsontext.AllowDuplicateNames(true)

// decodeReview reads an admission.k8s.io/v1 AdmissionReview with a request.
// On error the review is returned too when its UID could be read, so that
// the answer still names the request.
//
// request.object and request.oldObject of the kinds the rules slim are
// decoded straight into their slim form (RawExtension.Object, Raw left
// empty) while the review is read, so the object's bytes are scanned once.
// That needs request.kind before request.object, which is the order the
// API server writes; otherwise the object is kept raw and decoded later.
// If that fast pass fails, the review is read again with the objects kept
// raw, so that a malformed object is reported against its kind by the
// validator, as any other undecodable object.
func decodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	review, err := unmarshalReview(body, true)
	if err != nil {
		review, err = unmarshalReview(body, false)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to decode the AdmissionReview: %w", err)
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return review, fmt.Errorf("expected an %s AdmissionReview, got apiVersion=%q kind=%q", admissionv1.SchemeGroupVersion, review.APIVersion, review.Kind)
	}
	if review.Request == nil {
		return review, errors.New("the AdmissionReview has no request")
	}
	return review, nil
}

// unmarshalReview decodes body, with the objects slim-decoded in passing
// when slim is set (see decodeReview).
func unmarshalReview(body []byte, slim bool) (*admissionv1.AdmissionReview, error) {
	review := &admissionv1.AdmissionReview{}
	if !slim {
		return review, jsonv2.Unmarshal(body, review, decodeOptions)
	}
	d := reviewDecoders.Get().(*reviewDecoder)
	d.review = review
	err := jsonv2.Unmarshal(body, review, d.opts)
	d.review = nil
	reviewDecoders.Put(d)
	return review, err
}

// reviewDecoder decodes one review at a time with the slim unmarshaler
// of request.object and request.oldObject. Its options are made once and
// reused: encoding/json/v2 caches, per set of unmarshalers, which Go types
// each applies to, and a set made per review started that cache empty on
// every request (half the decode's CPU at the API server's request rate,
// in the manager's profile).
type reviewDecoder struct {
	review *admissionv1.AdmissionReview // the review being decoded
	opts   jsonv2.Options
}

var reviewDecoders = sync.Pool{New: func() any {
	d := &reviewDecoder{}
	d.opts = jsonv2.JoinOptions(decodeOptions, jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(d.object)))
	return d
}}

// object decodes request.object or request.oldObject of a kind the rules
// slim straight into its slim form; anything else is left to the usual
// decode (raw).
func (d *reviewDecoder) object(dec *jsontext.Decoder, raw *runtime.RawExtension) error {
	req := d.review.Request
	if req == nil || req.Kind.Kind == "" {
		return errors.ErrUnsupported // decode it the usual way: raw
	}
	if p := dec.StackPointer(); p != "/request/object" && p != "/request/oldObject" {
		return errors.ErrUnsupported
	}
	obj, known := newObject(schema.GroupVersionKind(req.Kind))
	if !known || dec.PeekKind() != '{' {
		return errors.ErrUnsupported
	}
	target, fill, ok := slimTarget(obj)
	if !ok {
		return errors.ErrUnsupported
	}
	if err := jsonv2.UnmarshalDecode(dec, target); err != nil {
		return err
	}
	fill()
	raw.Object = obj
	return nil
}

// write answers with an AdmissionReview holding resp.
func (h *ReviewHandler) write(w http.ResponseWriter, review *admissionv1.AdmissionReview, resp admission.Response) {
	if review != nil && review.Request != nil {
		resp.UID = review.Request.UID
	}
	if resp.Result == nil {
		resp.Result = &metav1.Status{}
	}
	if resp.Result.Code == 0 {
		resp.Result.Code = http.StatusOK
	}
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: &resp.AdmissionResponse,
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(out); err != nil {
		h.Log.Error(err, "failed to write the admission response", "uid", resp.UID)
	}
}
