package metricsauth

import (
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
)

// Two requests share a cached decision only if everything a
// SubjectAccessReview reads is equal; group and extra order do not count.
func TestRequestKey(t *testing.T) {
	base := &authnv1.UserInfo{Username: "alice", UID: "1", Groups: []string{"a", "b"}, Extra: map[string]authnv1.ExtraValue{"k": {"v"}}}
	same := &authnv1.UserInfo{Username: "alice", UID: "1", Groups: []string{"b", "a"}, Extra: map[string]authnv1.ExtraValue{"k": {"v"}}}
	if requestKey(base, "get", "/metrics") != requestKey(same, "get", "/metrics") {
		t.Error("group order changed the key")
	}
	for name, c := range map[string]struct {
		u          *authnv1.UserInfo
		verb, path string
	}{
		"user":             {&authnv1.UserInfo{Username: "alicf", UID: "1", Groups: []string{"a", "b"}, Extra: base.Extra}, "get", "/metrics"},
		"uid":              {&authnv1.UserInfo{Username: "alice", UID: "2", Groups: []string{"a", "b"}, Extra: base.Extra}, "get", "/metrics"},
		"groups":           {&authnv1.UserInfo{Username: "alice", UID: "1", Groups: []string{"a"}, Extra: base.Extra}, "get", "/metrics"},
		"extra":            {&authnv1.UserInfo{Username: "alice", UID: "1", Groups: []string{"a", "b"}}, "get", "/metrics"},
		"verb":             {base, "post", "/metrics"},
		"path":             {base, "get", "/metrics/x"},
		"shifted boundary": {&authnv1.UserInfo{Username: "alice1", Groups: []string{"a", "b"}, Extra: base.Extra}, "get", "/metrics"},
	} {
		if requestKey(c.u, c.verb, c.path) == requestKey(base, "get", "/metrics") {
			t.Errorf("%s: a different request has the same key", name)
		}
	}
	// An extra value shaped like the next key: the values are counted.
	shifted := &authnv1.UserInfo{Username: "alice", Extra: map[string]authnv1.ExtraValue{"a": {"x=b", "v"}}}
	split := &authnv1.UserInfo{Username: "alice", Extra: map[string]authnv1.ExtraValue{"a": {}, "b": {"v"}}}
	if requestKey(shifted, "get", "/metrics") == requestKey(split, "get", "/metrics") {
		t.Error("extra values shifted into the next key share a key")
	}
}

func TestTTLCache(t *testing.T) {
	var c ttlCache[int]
	t0 := time.Unix(1000, 0)
	c.put("a", 1, t0, time.Minute)
	if v, ok := c.get("a", t0.Add(59*time.Second)); !ok || v != 1 {
		t.Errorf("before expiry: %d %v", v, ok)
	}
	if _, ok := c.get("a", t0.Add(time.Minute)); ok {
		t.Error("served at its expiry")
	}
	for i := range maxEntries + 10 {
		c.put(string(rune(i+100)), i, t0, time.Minute)
	}
	if len(c.m) > maxEntries {
		t.Errorf("%d entries, bound %d", len(c.m), maxEntries)
	}
}
