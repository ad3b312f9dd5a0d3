package metrics

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCertificateNotAfter reads the expiry of a PEM certificate, and none
// of a missing or non-PEM file.
func TestCertificateNotAfter(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := time.Date(2031, 5, 4, 3, 2, 1, 0, time.UTC)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook"},
		NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "tls.crt")
	if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.crt")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		want float64
		ok   bool
	}{
		{good, float64(notAfter.Unix()), true},
		{junk, 0, false},
		{filepath.Join(dir, "missing.crt"), 0, false},
	} {
		got, ok := CertificateNotAfter(tc.file)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %v %v, want %v %v", filepath.Base(tc.file), got, ok, tc.want, tc.ok)
		}
	}
}
