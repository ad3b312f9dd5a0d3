package cli

// What `kubectl apply` refuses of a policy, `loopguard check` refuses too,
// with the same field paths and messages: the spec is validated by the
// CRDs' own schema and CEL rules (validate_schema.go), the metadata by the
// API server's ObjectMeta validation.

import (
	"context"
	"encoding/json"
	"fmt"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var metadataPath = field.NewPath("metadata")

// validatePolicy checks a LoopbackService or ClusterLoopbackService (gvk)
// as the API server would on create. raw is the object as written; it is
// not changed. namespace is the one the object would be created in
// (ignored for cluster-scoped kinds, as the API server does).
func validatePolicy(raw map[string]any, gvk schema.GroupVersionKind, namespace string) field.ErrorList {
	v, err := crdSchemaValidator(gvk)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	obj, err := jsonCopy(raw)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return v.validate(context.Background(), obj, validatePolicyMetadata(obj["metadata"], v.namespaced, namespace))
}

// validatePolicyMetadata runs the API server's ObjectMeta checks (name a
// DNS subdomain, labels, annotations, ...). One check is loopguard's own,
// not the API server's: a name is required even with generateName, since
// a policy is referred to by its name.
func validatePolicyMetadata(raw any, namespaced bool, namespace string) field.ErrorList {
	var md metav1.ObjectMeta
	if m, ok := raw.(map[string]any); ok {
		b, err := json.Marshal(m)
		if err == nil {
			err = json.Unmarshal(b, &md)
		}
		if err != nil {
			return field.ErrorList{field.Invalid(metadataPath, nil, fmt.Sprintf("failed to decode the metadata: %v", err))}
		}
	}
	md.Namespace = ""
	if namespaced {
		md.Namespace = namespace
	}
	errs := apivalidation.ValidateObjectMeta(&md, namespaced, apivalidation.NameIsDNSSubdomain, metadataPath)
	if md.Name == "" && md.GenerateName != "" {
		errs = append(errs, field.Required(metadataPath.Child("name"), "loopguard needs the policy's name: generateName is not enough"))
	}
	return errs
}

// jsonCopy returns a deep copy of raw as the API server decodes JSON:
// integers as int64, other numbers as float64.
func jsonCopy(raw map[string]any) (map[string]any, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("failed to encode the object: %w", err)
	}
	var out map[string]any
	if err := utiljson.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("failed to decode the object: %w", err)
	}
	return out, nil
}
