package rules

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func TestMayOverlap(t *testing.T) {
	cases := []struct {
		name string
		a, b string // labels.Parse syntax; "" selects everything
		want bool
	}{
		{"both empty", "", "", true},
		{"empty overlaps anything", "", "app=cart", true},
		{"empty overlaps DoesNotExist", "", "!app", true},
		{"same equals", "app=cart", "app=cart", true},
		{"different equals", "app=cart", "app=web", false},
		{"different keys", "app=cart", "tier=backend", true},
		{"equals in set", "app=cart", "app in (cart,web)", true},
		{"equals outside set", "app=cart", "app in (web,db)", false},
		{"in sets intersect", "app in (a,b)", "app in (b,c)", true},
		{"in sets disjoint", "app in (a,b)", "app in (c,d)", false},
		{"exists vs does not exist", "app", "!app", false},
		{"equals vs does not exist", "app=cart", "!app", false},
		{"in vs does not exist", "app in (a)", "!app", false},
		{"does not exist vs not in", "!app", "app notin (a)", true},
		{"does not exist vs not equals", "!app", "app!=a", true},
		{"both does not exist", "!app", "!app", true},
		{"equals vs not equals same", "app=a", "app!=a", false},
		{"equals vs not equals other", "app=a", "app!=b", true},
		{"in covered by notin", "app in (a,b)", "app notin (a,b,c)", false},
		{"in partly covered by notin", "app in (a,b)", "app notin (a)", true},
		{"notin vs notin", "app notin (a)", "app notin (b)", true},
		{"exists vs notin", "app", "app notin (a,b)", true},
		{"gt counts as exists", "n>3", "n<1", true},
		{"gt vs does not exist", "n>3", "!n", false},
		{"one key disjoint decides", "app=cart,tier=a", "app=cart,tier=b", false},
		{"self-contradictory selector", "app=a,app=b", "", false},
		{"several keys all compatible", "app=cart,tier in (a,b)", "tier notin (a),env", true},
		{"in split across both", "app in (a,b),app notin (a)", "app notin (b)", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := labels.Parse(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			b, err := labels.Parse(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if got := MayOverlap(a, b); got != tc.want {
				t.Errorf("MayOverlap(%q, %q) = %t, want %t", tc.a, tc.b, got, tc.want)
			}
			if got := MayOverlap(b, a); got != tc.want {
				t.Errorf("MayOverlap(%q, %q) = %t, want %t (not symmetric)", tc.b, tc.a, got, tc.want)
			}
		})
	}
	t.Run("nothing overlaps nothing", func(t *testing.T) {
		if MayOverlap(labels.Nothing(), labels.Everything()) || MayOverlap(labels.Everything(), nil) {
			t.Errorf("labels.Nothing() or nil overlaps")
		}
	})
}
