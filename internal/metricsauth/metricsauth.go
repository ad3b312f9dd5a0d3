// Package metricsauth guards the metrics endpoint as the API server's
// delegated authentication and authorization do: the caller's bearer token
// goes to a TokenReview, the user it names to a SubjectAccessReview for the
// request's path and verb (nonResourceURLs in RBAC), and both answers are
// cached for a short while.
//
// It replaces controller-runtime's filters.WithAuthenticationAndAuthorization,
// whose k8s.io/apiserver dependencies (CEL, gRPC, OpenTelemetry) made the
// manager's binary 92 MB instead of 51 MB and cost about 22 MB of resident
// memory for code that never runs (docs/benchmarks.md, "Controller at
// scale"). It serves bearer tokens only: no client certificates, no
// anonymous access.
package metricsauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// The cache lifetimes of the API server's delegating authenticator and
// authorizer (and so of the filter this one replaces).
const (
	AuthenticatedTTL   = time.Minute
	UnauthenticatedTTL = 10 * time.Second
	AllowTTL           = 5 * time.Minute
	DenyTTL            = 30 * time.Second
	// reviewTimeout bounds one TokenReview or SubjectAccessReview.
	reviewTimeout = 10 * time.Second
	// maxEntries bounds each cache: a scraper presents one token, so a
	// full cache means someone is sending many; it is then emptied.
	maxEntries = 4096
)

// Provider is a metricsserver.Options FilterProvider.
func Provider(c *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	authn, err := authnclient.NewForConfigAndClient(c, httpClient)
	if err != nil {
		return nil, fmt.Errorf("failed to create the TokenReview client: %w", err)
	}
	authz, err := authzclient.NewForConfigAndClient(c, httpClient)
	if err != nil {
		return nil, fmt.Errorf("failed to create the SubjectAccessReview client: %w", err)
	}
	g := &Guard{tokens: authn.TokenReviews(), access: authz.SubjectAccessReviews(), now: time.Now}
	return g.Filter, nil
}

// Guard authenticates and authorizes requests through the API server.
type Guard struct {
	tokens authnclient.TokenReviewInterface
	access authzclient.SubjectAccessReviewInterface
	now    func() time.Time

	mu        sync.Mutex
	users     ttlCache[*authnv1.UserInfo] // sha256 of the token -> user, nil when refused
	decisions ttlCache[decision]          // sha256 of user and request -> decision
}

type decision struct {
	allowed bool
	reason  string
}

// Filter wraps handler: 401 without a valid bearer token, 403 when RBAC
// does not allow the user the request's verb on its path, 500 when the API
// server cannot be asked.
func (g *Guard) Filter(log logr.Logger, handler http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		token, ok := bearerToken(req)
		if !ok {
			http.Error(w, "Unauthorized: a bearer token is required", http.StatusUnauthorized)
			return
		}
		user, err := g.authenticate(req.Context(), token)
		if err != nil {
			log.Error(err, "authentication of a metrics request failed")
			http.Error(w, "Authentication failed", http.StatusInternalServerError)
			return
		}
		if user == nil {
			log.V(4).Info("metrics request with a token the API server does not accept")
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		verb := strings.ToLower(req.Method)
		d, err := g.authorize(req.Context(), user, verb, req.URL.Path)
		if err != nil {
			log.Error(err, "authorization of a metrics request failed", "user", user.Username)
			http.Error(w, "Authorization for user "+user.Username+" failed", http.StatusInternalServerError)
			return
		}
		if !d.allowed {
			log.V(4).Info("metrics request denied", "user", user.Username, "verb", verb, "path", req.URL.Path, "reason", d.reason)
			http.Error(w, "Authorization denied for user "+user.Username, http.StatusForbidden)
			return
		}
		// The token is the caller's, not for the handler to see.
		req.Header.Del("Authorization")
		handler.ServeHTTP(w, req)
	}), nil
}

// bearerToken is the token of an "Authorization: Bearer <token>" header.
func bearerToken(req *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(req.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// authenticate returns the token's user, or nil if the API server refuses
// the token.
func (g *Guard) authenticate(ctx context.Context, token string) (*authnv1.UserInfo, error) {
	return cached(ctx, g, &g.users, digest(token), func(ctx context.Context) (*authnv1.UserInfo, time.Duration, error) {
		tr, err := g.tokens.Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			return nil, 0, fmt.Errorf("TokenReview: %w", err)
		}
		if !tr.Status.Authenticated {
			return nil, UnauthenticatedTTL, nil
		}
		return &tr.Status.User, AuthenticatedTTL, nil
	})
}

// authorize asks whether user may verb path (a non-resource URL).
func (g *Guard) authorize(ctx context.Context, user *authnv1.UserInfo, verb, path string) (decision, error) {
	return cached(ctx, g, &g.decisions, digest(requestKey(user, verb, path)), func(ctx context.Context) (decision, time.Duration, error) {
		extra := map[string]authzv1.ExtraValue{}
		for k, v := range user.Extra {
			extra[k] = authzv1.ExtraValue(v)
		}
		sar, err := g.access.Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
			NonResourceAttributes: &authzv1.NonResourceAttributes{Path: path, Verb: verb},
		}}, metav1.CreateOptions{})
		if err != nil {
			return decision{}, 0, fmt.Errorf("SubjectAccessReview: %w", err)
		}
		d := decision{allowed: sar.Status.Allowed && !sar.Status.Denied, reason: sar.Status.Reason}
		if !d.allowed {
			return d, DenyTTL, nil
		}
		return d, AllowTTL, nil
	})
}

// cached answers from c while the entry for key lives, else asks review
// (within reviewTimeout) and keeps its answer for the TTL it returns.
func cached[V any](ctx context.Context, g *Guard, c *ttlCache[V], key string, review func(context.Context) (V, time.Duration, error)) (V, error) {
	now := g.now()
	g.mu.Lock()
	v, ok := c.get(key, now)
	g.mu.Unlock()
	if ok {
		return v, nil
	}
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	v, ttl, err := review(ctx)
	if err != nil {
		return v, err
	}
	g.mu.Lock()
	c.put(key, v, now, ttl)
	g.mu.Unlock()
	return v, nil
}

// requestKey is everything a SubjectAccessReview depends on, unambiguous:
// each part is length-prefixed, and each list counted.
func requestKey(u *authnv1.UserInfo, verb, path string) string {
	var b strings.Builder
	add := func(s string) { fmt.Fprintf(&b, "%d:%s|", len(s), s) }
	add(u.Username)
	add(u.UID)
	add(verb)
	add(path)
	groups := slices.Clone(u.Groups)
	slices.Sort(groups)
	add(strconv.Itoa(len(groups)))
	for _, g := range groups {
		add("g=" + g)
	}
	keys := make([]string, 0, len(u.Extra))
	for k := range u.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add("x=" + k)
		add(strconv.Itoa(len(u.Extra[k])))
		for _, v := range u.Extra[k] {
			add(v)
		}
	}
	return b.String()
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// ttlCache is a map whose entries expire; callers hold the Guard's lock.
type ttlCache[V any] struct {
	m map[string]entry[V]
}

type entry[V any] struct {
	v       V
	expires time.Time
}

func (c *ttlCache[V]) get(key string, now time.Time) (V, bool) {
	e, ok := c.m[key]
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(key string, v V, now time.Time, ttl time.Duration) {
	if c.m == nil {
		c.m = map[string]entry[V]{}
	}
	if len(c.m) >= maxEntries {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxEntries {
			clear(c.m)
		}
	}
	c.m[key] = entry[V]{v: v, expires: now.Add(ttl)}
}
