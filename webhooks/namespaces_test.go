package webhooks

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// countingReader answers namespace GETs from a map and counts them.
type countingReader struct {
	labels map[string]map[string]string
	gets   []string
}

func (r *countingReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	r.gets = append(r.gets, key.Name)
	l, ok := r.labels[key.Name]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, key.Name)
	}
	obj.(*metav1.PartialObjectMetadata).Labels = l
	return nil
}

func (r *countingReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("not a list")
}

// TestLiveLabelsAreBounded: reviews naming unknown namespaces (a burst in
// a new one, or forged) cost the API server a bounded number of reads:
// an answer, a missing namespace's too, is reused for liveTTL, and past
// the rate the review is refused rather than read.
func TestLiveLabelsAreBounded(t *testing.T) {
	ctx := context.Background()
	r := &countingReader{labels: map[string]map[string]string{"prod-7": {"env": "prod"}}}
	now := time.Unix(1000, 0)
	l := &liveLabels{r: r, limiter: rate.NewLimiter(0, 3), now: func() time.Time { return now }, answers: map[string]liveAnswer{}}

	for range 5 {
		got, err := l.get(ctx, "prod-7")
		if err != nil || got["env"] != "prod" {
			t.Fatalf("get(prod-7) = %v, %v", got, err)
		}
		if got, err := l.get(ctx, "nowhere"); err != nil || got != nil {
			t.Fatalf("get(nowhere) = %v, %v; want no labels, no error", got, err)
		}
	}
	if len(r.gets) != 2 {
		t.Fatalf("GETs %v for 10 reviews in two namespaces within the TTL, want 2", r.gets)
	}
	now = now.Add(liveTTL)
	if _, err := l.get(ctx, "prod-7"); err != nil || len(r.gets) != 3 {
		t.Fatalf("after the TTL: err %v, GETs %v; want a third GET", err, r.gets)
	}
	// The budget (3, no refill here) is spent: a new name is refused
	// without a GET, and a kept answer is still served.
	if _, err := l.get(ctx, "forged-1"); !errors.Is(err, errLiveBudget) {
		t.Fatalf("over budget: err %v, want errLiveBudget", err)
	}
	if _, err := l.get(ctx, "prod-7"); err != nil || len(r.gets) != 3 {
		t.Fatalf("kept answer over budget: err %v, GETs %v", err, r.gets)
	}
	// The answers kept are bounded.
	l.limiter = rate.NewLimiter(rate.Inf, 0)
	for i := range liveMaxEntries + 10 {
		if _, err := l.get(ctx, "ns-"+string(rune('a'+i%26))+time.Duration(i).String()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(l.answers); n > liveMaxEntries {
		t.Errorf("%d answers kept, want at most %d", n, liveMaxEntries)
	}
}
