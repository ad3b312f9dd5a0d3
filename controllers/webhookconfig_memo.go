package controllers

import (
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strings"

	"github.com/loopguard/loopguard/internal/webhookconfig"
)

// registrationMemo is the last configuration the registration controller
// found written as desired: the digest of what webhookconfig.Desired read
// (the policies and the CA; the other options are fixed at start), the
// configuration's resourceVersion then, and the coverage it gives. While
// neither changes, a reconcile (most are a policy's Ready or Enforced
// condition changing) reuses the coverage instead of computing Desired
// and comparing it with the stored configuration: at 3,353 policies the
// two were up to a third of the manager's CPU while policies converged.
// Any write of the configuration (by anyone) changes its resourceVersion;
// any policy added, removed or with a new namespace selector changes the
// digest. The zero value, with no resourceVersion, reuses nothing.
type registrationMemo struct {
	inputs          [sha256.Size]byte
	resourceVersion string
	coverage        map[webhookconfig.Key]webhookconfig.Coverage
}

// registrationInputs is the digest of Desired's inputs that change.
func registrationInputs(policies []webhookconfig.Policy, ca []byte) [sha256.Size]byte {
	keys := make([]string, 0, len(policies))
	for _, p := range policies {
		sel := ""
		if p.NamespaceSelector != nil {
			b, _ := json.Marshal(p.NamespaceSelector)
			sel = string(b)
		} else if p.Namespace == "" {
			sel = "nil"
		}
		// NUL cannot be in a name or a label; JSON escapes it.
		keys = append(keys, p.Namespace+"\x00"+p.Name+"\x00"+sel)
	}
	slices.Sort(keys)
	h := sha256.New()
	_, _ = h.Write(ca)
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(strings.Join(keys, "\x00\x00")))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// reuse returns the coverage kept when the inputs and the stored
// configuration are those it was found written for.
func (m *registrationMemo) reuse(inputs [sha256.Size]byte, resourceVersion string) (map[webhookconfig.Key]webhookconfig.Coverage, bool) {
	if resourceVersion != "" && m.resourceVersion == resourceVersion && m.inputs == inputs {
		return m.coverage, true
	}
	return nil, false
}

// keep records the coverage of a configuration read at resourceVersion
// and found equal to what Desired gave.
func (m *registrationMemo) keep(inputs [sha256.Size]byte, resourceVersion string, coverage map[webhookconfig.Key]webhookconfig.Coverage) {
	*m = registrationMemo{inputs: inputs, resourceVersion: resourceVersion, coverage: coverage}
}
