// Command devtool does the parts of hack/dev.sh that need more than bash and
// coreutils: PKI generation, kubeconfig writing, rewriting the production
// webhook configuration for a webhook served on the host, and TLS/HTTP probes.
// It exists so the dev harness needs no openssl, curl, jq or yq.
package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const usage = `usage: devtool <command> [flags]

commands:
  pki          --dir DIR [--node-name N --node-ip IP]
                                              create or refresh the dev PKI (prints regenerated files)
  kubeconfig   --server URL --ca F --cert F --key F --user NAME --out F
  webhook      --ca F --url-base URL < kustomize output > webhook configs
  probe        --url URL [--ca F] [--cert F --key F] [--status N]
                                              one request; exit 0 if it answers (with status N if N>0)
  wait-webhook --url URL --ca F [--timeout D] retry probe until the TLS handshake and a response succeed
  proxy        --listen ADDR --backends A,B    TCP round-robin (REPLICAS>1 in hack/dev.sh)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "pki":
		err = cmdPKI(args)
	case "kubeconfig":
		err = cmdKubeconfig(args)
	case "webhook":
		err = cmdWebhook(args, os.Stdin, os.Stdout)
	case "probe":
		err = cmdProbe(args)
	case "wait-webhook":
		err = cmdWaitWebhook(args)
	case "proxy":
		err = cmdProxy(args)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "devtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// ---------------------------------------------------------------- pki

const (
	caValidity   = 365 * 24 * time.Hour
	leafValidity = 30 * 24 * time.Hour
	// A certificate expiring sooner than this is regenerated, so a dev cluster
	// brought up today keeps working through tomorrow.
	renewBefore = 24 * time.Hour
)

// certSpec describes one certificate; an existing file is kept only if it
// still matches its spec, so changing a spec here regenerates that file.
type certSpec struct {
	name    string // file base name: <name>.crt / <name>.key
	cn      string
	orgs    []string
	dns     []string
	ips     []net.IP
	usages  []x509.ExtKeyUsage
	isCA    bool
	caName  string // issuing CA's spec name; "" for self-signed CAs
	lifeDur time.Duration
}

var (
	loopback   = []net.IP{net.ParseIP("127.0.0.1")}
	serverAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	clientAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
)

// nodeIdentity is the dev node's name and IP, which its certificates (and
// the API server's, which listens on that IP when the node runs) carry.
type nodeIdentity struct {
	name string
	ip   net.IP
}

// defaultNode matches hack/dev.sh: 10.245.0.1 is an address the harness
// puts on its own bridge, never the machine's uplink.
var defaultNode = nodeIdentity{name: "loopguard-dev-node", ip: net.ParseIP("10.245.0.1")}

// pkiSpecs lists CAs before the leaves they sign. The node certificates are
// issued whether or not a node runs, so switching between the control plane
// alone and a full node never regenerates the PKI.
func pkiSpecs(node nodeIdentity) []certSpec {
	return []certSpec{
		{name: "ca", cn: "loopguard-dev-ca", isCA: true, lifeDur: caValidity},
		{name: "etcd-server", cn: "etcd-server", dns: []string{"localhost"}, ips: loopback,
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, caName: "ca", lifeDur: leafValidity},
		{name: "apiserver-etcd-client", cn: "kube-apiserver-etcd-client", usages: clientAuth, caName: "ca", lifeDur: leafValidity},
		{name: "apiserver", cn: "kube-apiserver",
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			// 127.0.0.1 without a node; the node IP with one (kubectl on the
			// host and pods through the kubernetes Service, 10.96.0.1, both
			// reach the API server there).
			ips:    []net.IP{net.ParseIP("127.0.0.1"), node.ip, net.ParseIP("10.96.0.1")},
			usages: serverAuth, caName: "ca", lifeDur: leafValidity},
		{name: "admin", cn: "loopguard-dev-admin", orgs: []string{"system:masters"}, usages: clientAuth, caName: "ca", lifeDur: leafValidity},
		{name: "controller-manager", cn: "system:kube-controller-manager", usages: clientAuth, caName: "ca", lifeDur: leafValidity},
		// Request-header (front-proxy) auth, as kubeadm sets it up: without it the
		// controller-manager logs an error about a missing CA every few seconds,
		// and aggregated APIs could not authenticate the API server.
		{name: "front-proxy-ca", cn: "loopguard-dev-front-proxy-ca", isCA: true, lifeDur: caValidity},
		{name: "front-proxy-client", cn: "front-proxy-client", usages: clientAuth, caName: "front-proxy-ca", lifeDur: leafValidity},
		// The webhook has its own CA so that its caBundle trusts nothing else.
		{name: "webhook/ca", cn: "loopguard-dev-webhook-ca", isCA: true, lifeDur: caValidity},
		{name: "webhook/tls", cn: "127.0.0.1", dns: []string{"localhost"}, ips: loopback, usages: serverAuth, caName: "webhook/ca", lifeDur: leafValidity},
		// The API server's client identity towards the webhook (its
		// AdmissionConfiguration kubeconfig), under a CA of its own that the
		// manager trusts for nothing else (--webhook-client-ca): a pod that
		// reaches the webhook port has no certificate it signed.
		{name: "webhook/client-ca", cn: "loopguard-dev-webhook-client-ca", isCA: true, lifeDur: caValidity},
		{name: "webhook/apiserver-client", cn: "kube-apiserver-webhook-client", usages: clientAuth, caName: "webhook/client-ca", lifeDur: leafValidity},
		// The node. Users and groups are the ones the built-in RBAC and the
		// Node authorizer know: system:node:<name> in system:nodes,
		// system:kube-scheduler, system:kube-proxy (bound to
		// system:node-proxier).
		{name: "kube-scheduler", cn: "system:kube-scheduler", usages: clientAuth, caName: "ca", lifeDur: leafValidity},
		{name: "kube-proxy", cn: "system:kube-proxy", usages: clientAuth, caName: "ca", lifeDur: leafValidity},
		{name: "kubelet-client", cn: "system:node:" + node.name, orgs: []string{"system:nodes"}, usages: clientAuth, caName: "ca", lifeDur: leafValidity},
		// The kubelet's serving cert, signed by the cluster CA so the API
		// server verifies the kubelet it proxies exec, logs and port-forward to.
		{name: "kubelet", cn: node.name, dns: []string{node.name}, ips: []net.IP{node.ip}, usages: serverAuth, caName: "ca", lifeDur: leafValidity},
		// The API server's client identity towards the kubelet; bound to
		// system:kubelet-api-admin by hack/node/rbac.yaml.
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", usages: clientAuth, caName: "ca", lifeDur: leafValidity},
	}
}

type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func cmdPKI(args []string) error {
	fs := flag.NewFlagSet("pki", flag.ContinueOnError)
	dir := fs.String("dir", ".dev/pki", "output directory")
	nodeName := fs.String("node-name", defaultNode.name, "the dev node's name (kubelet certificates)")
	nodeIP := fs.String("node-ip", defaultNode.ip.String(), "the dev node's IP (kubelet and API server certificates)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	node := nodeIdentity{name: *nodeName, ip: net.ParseIP(*nodeIP)}
	if node.ip == nil || node.name == "" {
		return fmt.Errorf("--node-name %q --node-ip %q: want a name and an IP address", *nodeName, *nodeIP)
	}
	changed, err := ensurePKI(*dir, node, time.Now())
	if err != nil {
		return err
	}
	for _, c := range changed {
		fmt.Println(c)
	}
	return nil
}

// ensurePKI creates or refreshes every file under dir and returns the
// relative names of those it (re)wrote.
func ensurePKI(dir string, node nodeIdentity, now time.Time) ([]string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "webhook"), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	var changed []string
	issued := map[string]keyPair{}
	renewed := map[string]bool{}
	for _, s := range pkiSpecs(node) {
		var issuer *keyPair
		if s.caName != "" {
			ca := issued[s.caName]
			issuer = &ca
		}
		crtPath := filepath.Join(dir, s.name+".crt")
		keyPath := filepath.Join(dir, s.name+".key")
		kp, err := loadKeyPair(crtPath, keyPath)
		// A leaf whose CA was just replaced must be replaced too.
		if err == nil && !renewed[s.caName] && s.valid(kp, issuer, now) {
			issued[s.name] = kp
			continue
		}
		kp, err = s.issue(issuer, now)
		if err != nil {
			return nil, fmt.Errorf("issue %s: %w", s.name, err)
		}
		if err := writeKeyPair(crtPath, keyPath, kp); err != nil {
			return nil, err
		}
		issued[s.name] = kp
		renewed[s.name] = true
		changed = append(changed, s.name+".crt")
	}
	saChanged, err := ensureSAKey(dir)
	if err != nil {
		return nil, err
	}
	if saChanged {
		changed = append(changed, "sa.key")
	}
	return changed, nil
}

func (s certSpec) valid(kp keyPair, issuer *keyPair, now time.Time) bool {
	c := kp.cert
	if now.Add(renewBefore).After(c.NotAfter) || now.Before(c.NotBefore) {
		return false
	}
	if c.Subject.CommonName != s.cn || !slices.Equal(c.Subject.Organization, s.orgs) ||
		!slices.Equal(c.DNSNames, s.dns) || c.IsCA != s.isCA {
		return false
	}
	if len(c.IPAddresses) != len(s.ips) {
		return false
	}
	for i, ip := range s.ips {
		if !ip.Equal(c.IPAddresses[i]) {
			return false
		}
	}
	if pub, ok := kp.key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(c.PublicKey) {
		return false
	}
	if issuer == nil {
		return c.CheckSignatureFrom(c) == nil
	}
	return c.CheckSignatureFrom(issuer.cert) == nil
}

func (s certSpec) issue(issuer *keyPair, now time.Time) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return keyPair{}, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
		// Backdated so a slightly skewed clock does not reject a fresh cert.
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(s.lifeDur),
		ExtKeyUsage: s.usages,
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
	parent, signer := tmpl, crypto.Signer(key)
	if s.isCA {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if issuer != nil {
		parent, signer = issuer.cert, issuer.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return keyPair{}, fmt.Errorf("sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return keyPair{}, fmt.Errorf("parse new cert: %w", err)
	}
	return keyPair{cert: cert, key: key}, nil
}

func loadKeyPair(crtPath, keyPath string) (keyPair, error) {
	crtPEM, err := os.ReadFile(crtPath)
	if err != nil {
		return keyPair{}, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return keyPair{}, err
	}
	cb, _ := pem.Decode(crtPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return keyPair{}, fmt.Errorf("%s: no CERTIFICATE block", crtPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return keyPair{}, fmt.Errorf("%s: %w", crtPath, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return keyPair{}, fmt.Errorf("%s: %w", keyPath, err)
	}
	return keyPair{cert: cert, key: key}, nil
}

func parseKey(keyPEM []byte) (crypto.Signer, error) {
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("no PEM block")
	}
	switch kb.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(kb.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unsupported PEM block %q", kb.Type)
}

func writeKeyPair(crtPath, keyPath string, kp keyPair) error {
	keyDER, err := x509.MarshalECPrivateKey(kp.key.(*ecdsa.PrivateKey))
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	// Key first: a crash in between leaves a cert/key mismatch, which the
	// next run detects and repairs, never a cert with a stale key accepted.
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.cert.Raw}), 0o644)
}

// ensureSAKey keeps sa.key/sa.pub, the service-account token signing pair,
// unless one is missing or unreadable.
func ensureSAKey(dir string) (bool, error) {
	keyPath, pubPath := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if b, err := os.ReadFile(keyPath); err == nil {
		if k, err := parseKey(b); err == nil {
			if pb, err := os.ReadFile(pubPath); err == nil {
				if blk, _ := pem.Decode(pb); blk != nil {
					if pub, err := x509.ParsePKIXPublicKey(blk.Bytes); err == nil {
						if eq, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(pub) {
							return false, nil
						}
					}
				}
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, fmt.Errorf("generate service-account key: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return false, fmt.Errorf("marshal service-account key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return false, fmt.Errorf("marshal service-account public key: %w", err)
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return false, err
	}
	return true, writeFileAtomic(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ---------------------------------------------------------------- kubeconfig

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

func cmdProbe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	url := fs.String("url", "", "URL to GET")
	caFile := fs.String("ca", "", "CA to verify an https URL with (required for https)")
	certFile := fs.String("cert", "", "client certificate, for servers that require one (etcd)")
	keyFile := fs.String("key", "", "client key for --cert")
	status := fs.Int("status", 0, "required HTTP status; 0 accepts any")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := newClient(*url, *caFile)
	if err != nil {
		return err
	}
	if err := withClientCert(client, *certFile, *keyFile); err != nil {
		return err
	}
	return probe(client, *url, *status)
}

// withClientCert makes client present the pair certFile/keyFile (nothing
// when certFile is empty).
func withClientCert(client *http.Client, certFile, keyFile string) error {
	if certFile == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("--cert/--key: %w", err)
	}
	tr, ok := client.Transport.(*http.Transport)
	if !ok || tr.TLSClientConfig == nil {
		return errors.New("--cert needs an https URL")
	}
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	return nil
}

func cmdWaitWebhook(args []string) error {
	fs := flag.NewFlagSet("wait-webhook", flag.ContinueOnError)
	url := fs.String("url", "https://127.0.0.1:9443/", "any URL on the webhook server")
	caFile := fs.String("ca", "", "webhook CA")
	certFile := fs.String("cert", "", "client certificate, for a webhook that authenticates its callers (--webhook-client-ca)")
	keyFile := fs.String("key", "", "client key for --cert")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *caFile == "" {
		return errors.New("--ca is required")
	}
	client, err := newClient(*url, *caFile)
	if err != nil {
		return err
	}
	if err := withClientCert(client, *certFile, *keyFile); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for {
		err := probe(client, *url, 0)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhook not answering after %s: %w", *timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func newClient(url, caFile string) (*http.Client, error) {
	if url == "" {
		return nil, errors.New("--url is required")
	}
	tr := &http.Transport{Proxy: nil} // never route loopback probes via a proxy
	if strings.HasPrefix(url, "https://") {
		if caFile == "" {
			return nil, errors.New("--ca is required for an https URL")
		}
		pemData, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("--ca %s: no certificates", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 3 * time.Second}, nil
}

func probe(client *http.Client, url string, want int) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if want != 0 && resp.StatusCode != want {
		return fmt.Errorf("%s: HTTP %d, want %d", url, resp.StatusCode, want)
	}
	return nil
}
