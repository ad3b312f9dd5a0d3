package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

// heapProfile saves the manager's heap profile, after a forced collection
// (so that inuse is the live heap), as dir/heap-<name>.pb.gz; a no-op
// when dir or addr is empty. Read it with
// `go tool pprof -sample_index=inuse_space -top bin/manager <file>`.
func (b *bench) heapProfile(ctx context.Context, addr, dir, name string) {
	if dir == "" || addr == "" {
		return
	}
	file := filepath.Join(dir, "heap-"+name+".pb.gz")
	if err := saveURL(ctx, "http://"+addr+"/debug/pprof/heap?gc=1", file); err != nil {
		b.logf("heap profile %s not saved: %v", name, err)
		return
	}
	b.logf("heap profile %s saved: %s", name, file)
}

func saveURL(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
