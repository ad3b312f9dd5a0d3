// devtool kubeconfig: a kubeconfig with a client certificate.

package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

func cmdKubeconfig(args []string) error {
	fs := flag.NewFlagSet("kubeconfig", flag.ContinueOnError)
	server := fs.String("server", "https://127.0.0.1:6443", "API server URL")
	caFile := fs.String("ca", "", "CA certificate file")
	certFile := fs.String("cert", "", "client certificate file")
	keyFile := fs.String("key", "", "client key file")
	user := fs.String("user", "", "user (and context) name")
	out := fs.String("out", "", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *caFile == "" || *certFile == "" || *keyFile == "" || *user == "" || *out == "" {
		return errors.New("--ca, --cert, --key, --user and --out are required")
	}
	data := map[string][]byte{}
	for flagName, f := range map[string]string{"ca": *caFile, "cert": *certFile, "key": *keyFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--%s: %w", flagName, err)
		}
		data[flagName] = b
	}
	b, err := renderKubeconfig(*server, *user, data["ca"], data["cert"], data["key"])
	if err != nil {
		return err
	}
	return writeFileAtomic(*out, b, 0o600)
}

func renderKubeconfig(server, user string, ca, cert, key []byte) ([]byte, error) {
	const cluster = "loopguard-dev"
	enc := base64.StdEncoding.EncodeToString
	cfg := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"current-context": user,
		"clusters": []any{map[string]any{"name": cluster, "cluster": map[string]any{
			"server": server, "certificate-authority-data": enc(ca)}}},
		"users": []any{map[string]any{"name": user, "user": map[string]any{
			"client-certificate-data": enc(cert), "client-key-data": enc(key)}}},
		"contexts": []any{map[string]any{"name": user, "context": map[string]any{
			"cluster": cluster, "user": user}}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("marshal kubeconfig: %w", err)
	}
	return b, nil
}

// ---------------------------------------------------------------- webhook
