// devtool pki: the dev PKI (CAs, serving and client certificates, the
// ServiceAccount signing key), each file regenerated only when it no longer
// matches its spec.

package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

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
