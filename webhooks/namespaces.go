package webhooks

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/policyindex"
)

// Bounds of the live namespace reads (LiveNamespaceLabels).
const (
	// liveTTL is how long an answer is reused: longer than an informer
	// takes to deliver a new namespace, short enough that a relabelled
	// one is read again soon.
	liveTTL = 2 * time.Second
	// liveMaxEntries bounds the answers kept; past it they are dropped.
	liveMaxEntries = 4096
	// liveRate and liveBurst bound the reads a second. Reviews name an
	// unknown namespace only in the moments after it is created, or when
	// they are forged by a caller of an unauthenticated webhook port.
	liveRate  = 20
	liveBurst = 50
)

// errLiveBudget refuses a review when the reads are over budget; the
// API server reports it and the writer retries.
var errLiveBudget = errors.New("too many reviews in namespaces loopguard has not seen yet; retry in a moment")

// LiveNamespaceLabels reads a namespace's labels with r, which must be an
// API reader (manager.GetAPIReader), not the cache the index lags behind;
// only the metadata is fetched. Concurrent reads of one namespace share a
// GET, an answer (a missing namespace too) is reused for liveTTL, and at
// most liveRate GETs a second (liveBurst at once) reach the API server,
// so that no stream of reviews, forged or not, turns into as many reads.
func LiveNamespaceLabels(r client.Reader) policyindex.LabelsFunc {
	l := &liveLabels{r: r, limiter: rate.NewLimiter(liveRate, liveBurst), now: time.Now, answers: map[string]liveAnswer{}}
	return l.get
}

type liveLabels struct {
	r       client.Reader
	limiter *rate.Limiter
	now     func() time.Time
	group   singleflight.Group

	mu      sync.Mutex
	answers map[string]liveAnswer
}

type liveAnswer struct {
	labels map[string]string
	at     time.Time
}

func (l *liveLabels) get(ctx context.Context, namespace string) (map[string]string, error) {
	l.mu.Lock()
	a, ok := l.answers[namespace]
	l.mu.Unlock()
	if ok && l.now().Sub(a.at) < liveTTL {
		return a.labels, nil
	}
	v, err, _ := l.group.Do(namespace, func() (any, error) {
		if !l.limiter.Allow() {
			return nil, errLiveBudget
		}
		labels, err := l.read(ctx, namespace)
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if len(l.answers) >= liveMaxEntries {
			clear(l.answers)
		}
		l.answers[namespace] = liveAnswer{labels: labels, at: l.now()}
		l.mu.Unlock()
		return labels, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string]string), nil
}

// read GETs the namespace's metadata; nil labels when it does not exist.
func (l *liveLabels) read(ctx context.Context, namespace string) (map[string]string, error) {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := l.r.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return ns.Labels, nil
}
