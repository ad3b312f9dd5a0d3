package testenv

import (
	"context"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/app"
)

// IndexedCache starts an informer cache as the manager's (its options and
// addrindex's indexes) on e's control plane, stopping with ctx, and waits
// for it to sync.
func (e *Env) IndexedCache(ctx context.Context, t testing.TB) cache.Cache {
	t.Helper()
	opts := app.CacheOptions()
	opts.Scheme = app.Scheme()
	ca, err := cache.New(e.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := addrindex.Register(ctx, ca); err != nil {
		t.Fatal(err)
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		t.Fatal("the cache did not sync")
	}
	return ca
}
