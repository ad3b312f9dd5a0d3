package webhooks

import (
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// readObject decodes a JSON object member by member: the members member
// names a destination for are unmarshalled into it, every other one is
// passed over with a single ReadValue, which scans the raw value without
// copying it, where encoding/json/v2 would skip it token by token. For a
// pod that is most of its bytes: env, resources, probes, volumes,
// annotations, managedFields. null leaves the destinations as they are.
func readObject(dec *jsontext.Decoder, member func(name string) any) error {
	if dec.PeekKind() == 'n' {
		_, err := dec.ReadToken()
		return err
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != '{' {
		return fmt.Errorf("want a JSON object at %s, got %v", dec.StackPointer(), tok.Kind())
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return err
		}
		if dst := member(name.String()); dst != nil {
			if err := jsonv2.UnmarshalDecode(dec, dst); err != nil {
				return err
			}
		} else if _, err := dec.ReadValue(); err != nil {
			return err
		}
	}
	_, err = dec.ReadToken()
	return err
}

// UnmarshalJSONFrom implements jsonv2.UnmarshalerFrom.
func (m *slimMeta) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return readObject(dec, func(name string) any {
		switch name {
		case "name":
			return &m.Name
		case "generateName":
			return &m.GenerateName
		case "namespace":
			return &m.Namespace
		case "labels":
			return &m.Labels
		case "deletionTimestamp":
			return &m.DeletionTimestamp
		}
		return nil
	})
}

// UnmarshalJSONFrom implements jsonv2.UnmarshalerFrom.
func (c *slimContainer) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return readObject(dec, func(name string) any {
		switch name {
		case "name":
			return &c.Name
		case "ports":
			return &c.Ports
		case "restartPolicy":
			return &c.RestartPolicy
		}
		return nil
	})
}

// UnmarshalJSONFrom implements jsonv2.UnmarshalerFrom.
func (s *slimPodSpec) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return readObject(dec, func(name string) any {
		switch name {
		case "containers":
			return &s.Containers
		case "initContainers":
			return &s.InitContainers
		case "ephemeralContainers":
			return &s.EphemeralContainers
		case "hostNetwork":
			return &s.HostNetwork
		}
		return nil
	})
}

// UnmarshalJSONFrom implements jsonv2.UnmarshalerFrom.
func (s *slimPodStatus) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return readObject(dec, func(name string) any {
		if name == "phase" {
			return &s.Phase
		}
		return nil
	})
}
