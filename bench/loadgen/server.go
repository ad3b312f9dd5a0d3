package main

// The self-contained webhook server: the ExposureValidator cmd/manager
// registers, fed by a prepared policy index (test/workload) instead
// of informers, served by controller-runtime's webhook server over TLS on
// 127.0.0.1 with a self-signed certificate, HTTP/1.1 only as cmd/manager
// serves it by default.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/test/workload"
	"github.com/loopguard/loopguard/webhooks"
)

// serverInfo is the line a --serve process prints on stdout once it
// answers.
type serverInfo struct {
	URL      string `json:"url"`
	CA       string `json:"ca"`
	PID      int    `json:"pid"`
	Policies int    `json:"policies"`
}

// cpuReport answers a "cpu" line on stdin: the server process's user+system
// CPU time so far.
type cpuReport struct {
	CPUNanos int64 `json:"cpuNanos"`
}

// processCPU returns this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serve runs the webhook until ctx ends (Ctrl-C) or, with --stdin-control,
// stdin reaches EOF (the parent load generator exited).
func serve(ctx context.Context, o options) error {
	// controller-runtime's own logs (server start, errors) go to stderr;
	// the validator's audit log of every denial is encoded (JSON, as in
	// production) to --audit-log, io.Discard by default.
	ctrl.SetLogger(crzap.New(crzap.WriteTo(os.Stderr), crzap.UseDevMode(false)))
	audit := io.Discard
	if o.auditLog != "" {
		f, err := os.Create(o.auditLog)
		if err != nil {
			return err
		}
		defer f.Close()
		audit = f
	}
	metrics.Register()

	idx, err := workload.NewIndex(o.policies, o.placement)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "loopguard-loadgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := writeSelfSignedCert(dir); err != nil {
		return err
	}
	port := o.port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return err
		}
	}
	srv := webhook.NewServer(webhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: dir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	})
	log := crzap.New(crzap.WriteTo(audit), crzap.UseDevMode(false)).WithName("admission")
	srv.Register(webhooks.Path, &webhooks.ReviewHandler{Log: log, Handler: &webhooks.ExposureValidator{
		Index:  idx,
		Reader: workload.NewReader(),
		Log:    log,
	}})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.Start(ctx) }()
	started := srv.StartedChecker()
	for deadline := time.Now().Add(10 * time.Second); started(nil) != nil; {
		select {
		case err := <-errc:
			return fmt.Errorf("webhook server: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhook server did not start in 10s: %w", started(nil))
		}
	}
	info := serverInfo{
		URL: fmt.Sprintf("https://127.0.0.1:%d%s", port, webhooks.Path),
		CA:  filepath.Join(dir, "tls.crt"), PID: os.Getpid(), Policies: idx.Count(),
	}
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(info); err != nil {
		return err
	}

	// With --stdin-control (the parent load generator's pipe), stdin
	// lines "cpu" ask for the CPU time, and EOF means the parent is gone.
	var (
		mu         sync.Mutex
		profiling  bool
		profileErr error
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		if profiling {
			pprof.StopCPUProfile()
		}
	}()
	eof := make(chan struct{})
	if o.stdinControl {
		go func() {
			defer close(eof)
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				if sc.Text() != "cpu" {
					continue
				}
				// The first query marks the start of the measured
				// window: the CPU profile, if asked for, starts there.
				mu.Lock()
				if o.cpuProfile != "" && !profiling && profileErr == nil {
					if profileErr = startProfile(o.cpuProfile); profileErr == nil {
						profiling = true
					}
				}
				mu.Unlock()
				_ = out.Encode(cpuReport{CPUNanos: int64(processCPU())})
			}
		}()
	}
	select {
	case <-ctx.Done():
	case <-eof:
	case err := <-errc:
		return fmt.Errorf("webhook server: %w", err)
	}
	cancel()
	mu.Lock()
	err = profileErr
	mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case err := <-errc:
		return err
	case <-time.After(5 * time.Second):
		return nil
	}
}

func startProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return pprof.StartCPUProfile(f) // the file is closed at exit
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeSelfSignedCert writes tls.crt and tls.key for 127.0.0.1 into dir;
// the certificate is its own CA.
func writeSelfSignedCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "127.0.0.1", Organization: []string{"loopguard loadgen"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
