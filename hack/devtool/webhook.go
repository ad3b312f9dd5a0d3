// devtool webhook: the production webhook configuration rewritten for a
// webhook served on the host.

package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// webhookKinds are rewritten; every other object (Service, Certificate, …)
// is dropped because the dev webhook runs on the host, not in the cluster.
var webhookKinds = map[string]bool{
	"ValidatingWebhookConfiguration": true,
	// Mutating ones are rewritten the same way should the project add any.
	"MutatingWebhookConfiguration": true,
}

func cmdWebhook(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	caFile := fs.String("ca", "", "PEM CA bundle that signed the webhook serving cert")
	urlBase := fs.String("url-base", "https://127.0.0.1:9443", "scheme://host:port the webhook is served at")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *caFile == "" {
		return errors.New("--ca is required")
	}
	ca, err := os.ReadFile(*caFile)
	if err != nil {
		return fmt.Errorf("--ca: %w", err)
	}
	b, err := rewriteWebhooks(in, *urlBase, ca)
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

// rewriteWebhooks keeps only webhook configurations from a multi-document
// YAML stream and points each webhook at urlBase+service.path with caBundle
// set. Objects are handled as generic maps so no field is lost.
func rewriteWebhooks(in io.Reader, urlBase string, ca []byte) ([]byte, error) {
	urlBase = strings.TrimSuffix(urlBase, "/")
	bundle := base64.StdEncoding.EncodeToString(ca)
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var docs [][]byte
	for {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read YAML: %w", err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("parse YAML document: %w", err)
		}
		kind, _ := obj["kind"].(string)
		if obj == nil || !webhookKinds[kind] {
			continue
		}
		name := nestedString(obj, "metadata", "name")
		hooks, _ := obj["webhooks"].([]any)
		for i, h := range hooks {
			hook, ok := h.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s %s: webhooks[%d] is not an object", kind, name, i)
			}
			if err := rewriteClientConfig(hook, urlBase, bundle); err != nil {
				return nil, fmt.Errorf("%s %s: webhook %q: %w", kind, name, hook["name"], err)
			}
		}
		b, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("marshal %s %s: %w", kind, name, err)
		}
		docs = append(docs, b)
	}
	if len(docs) == 0 {
		return nil, errors.New("input has no ValidatingWebhookConfiguration or MutatingWebhookConfiguration")
	}
	return bytes.Join(docs, []byte("---\n")), nil
}

func rewriteClientConfig(hook map[string]any, urlBase, bundle string) error {
	cc, ok := hook["clientConfig"].(map[string]any)
	if !ok {
		return errors.New("no clientConfig")
	}
	svc, ok := cc["service"].(map[string]any)
	if !ok {
		if _, hasURL := cc["url"]; hasURL {
			return errors.New("clientConfig.url is set; expected clientConfig.service")
		}
		return errors.New("no clientConfig.service")
	}
	path, _ := svc["path"].(string)
	if path == "" {
		path = "/" // the API server's default for an unset service path
	} else if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	delete(cc, "service")
	cc["url"] = urlBase + path
	cc["caBundle"] = bundle
	return nil
}

func nestedString(obj map[string]any, keys ...string) string {
	var cur any = obj
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[k]
	}
	s, _ := cur.(string)
	return s
}

// ---------------------------------------------------------------- probes
