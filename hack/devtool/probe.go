// devtool probe and wait-webhook: TLS and HTTP probes.

package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

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
