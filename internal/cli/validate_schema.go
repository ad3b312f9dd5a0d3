package cli

// The CRDs' own schema, compiled into the binary (config/crd), validates
// policies read from files the way the API server's custom resource
// handler does on create: prune unknown fields, default, then the OpenAPI
// schema, list types and CEL rules (x-kubernetes-validations). The
// server's check of embedded objects' metadata (x-kubernetes-embedded-
// resource) is left out: loopguard's CRDs embed none.

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/loopguard/loopguard/config/crd"
)

// schemaValidator validates one kind and version of a CRD.
type schemaValidator struct {
	namespaced bool
	hasStatus  bool
	structural *structuralschema.Structural
	openAPI    apiservervalidation.SchemaValidator
	cel        *cel.Validator // nil when the schema has no CEL rules
}

var (
	schemaValidatorsOnce sync.Once
	schemaValidators     map[schema.GroupVersionKind]*schemaValidator
	schemaValidatorsErr  error
)

// crdSchemaValidator returns the validator of gvk built from the embedded
// CRDs; building them compiles every CEL rule, so it happens once.
func crdSchemaValidator(gvk schema.GroupVersionKind) (*schemaValidator, error) {
	schemaValidatorsOnce.Do(func() {
		schemaValidators, schemaValidatorsErr = buildSchemaValidators()
	})
	if schemaValidatorsErr != nil {
		return nil, schemaValidatorsErr
	}
	v, ok := schemaValidators[gvk]
	if !ok {
		return nil, fmt.Errorf("no CRD schema compiled in for %s", gvk)
	}
	return v, nil
}

func buildSchemaValidators() (map[schema.GroupVersionKind]*schemaValidator, error) {
	files, err := crd.Files()
	if err != nil {
		return nil, err
	}
	out := map[schema.GroupVersionKind]*schemaValidator{}
	for name, data := range files {
		var c apiextensionsv1.CustomResourceDefinition
		if err := sigsyaml.UnmarshalStrict(data, &c); err != nil {
			return nil, fmt.Errorf("failed to decode the CRD %s: %w", name, err)
		}
		for i := range c.Spec.Versions {
			ver := &c.Spec.Versions[i]
			if ver.Schema == nil {
				continue
			}
			v, err := newSchemaValidator(ver.Schema)
			if err != nil {
				return nil, fmt.Errorf("failed to build the validator of %s %s: %w", c.Name, ver.Name, err)
			}
			v.namespaced = c.Spec.Scope == apiextensionsv1.NamespaceScoped
			v.hasStatus = ver.Subresources != nil && ver.Subresources.Status != nil
			out[schema.GroupVersionKind{Group: c.Spec.Group, Version: ver.Name, Kind: c.Spec.Names.Kind}] = v
		}
	}
	return out, nil
}

// newSchemaValidator mirrors what the API server builds per CRD version
// (apiextensions-apiserver's customresource_handler.go).
func newSchemaValidator(v1 *apiextensionsv1.CustomResourceValidation) (*schemaValidator, error) {
	internal := &apiextensions.CustomResourceValidation{}
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(v1, internal, nil); err != nil {
		return nil, fmt.Errorf("failed to convert the schema to the internal version: %w", err)
	}
	s, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("failed to build the structural schema: %w", err)
	}
	s = s.DeepCopy() // PruneDefaults changes it
	if err := structuraldefaulting.PruneDefaults(s); err != nil {
		return nil, fmt.Errorf("failed to prune the schema's defaults: %w", err)
	}
	openAPI, _, err := apiservervalidation.NewSchemaValidator(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("failed to build the OpenAPI validator: %w", err)
	}
	return &schemaValidator{
		structural: s,
		openAPI:    openAPI,
		cel:        cel.NewValidator(s, true, celconfig.PerCallLimit),
	}, nil
}

// errRulesNotChecked is the API server's own error when it skips the CEL
// rules of an object that fails simpler checks.
const errRulesNotChecked = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"

// validate checks obj (JSON-like data: map[string]any, []any, string,
// int64, float64, bool; it is changed: pruned and defaulted) as the API
// server does on create, and returns errs (the caller's errors for the
// metadata, which the server validates first) with its own.
func (v *schemaValidator) validate(ctx context.Context, obj map[string]any, errs field.ErrorList) field.ErrorList {
	if v.hasStatus {
		delete(obj, "status") // create cannot set status
	}
	structuralpruning.Prune(obj, v.structural, true)
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj, v.structural)
	structuraldefaulting.Default(obj, v.structural)

	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, obj, v.openAPI)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, v.structural, obj)...)
	if v.cel == nil {
		return errs
	}
	// Like the API server, skip the rules when simpler checks already
	// failed: the rules may assume what those checks guarantee.
	for _, e := range errs {
		switch e.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return append(errs, field.Invalid(nil, nil, errRulesNotChecked))
		}
	}
	celErrs, _ := v.cel.Validate(ctx, nil, v.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	return append(errs, celErrs...)
}
