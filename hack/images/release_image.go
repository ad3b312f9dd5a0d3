package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations of an image in an OCI layout's index.json, as `docker save`
// writes them: containerd (`ctr images import`, `kind load image-archive`)
// names the image after the first, the OCI spec's tag is the second.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// imageRef is the reference of a release image: <registry>/<repo>:<version>.
func (r *release) imageRef(repo string) string {
	return r.registry + "/" + repo + ":" + r.version
}

// imageArchive is the image's archive, relative to the release.
func imageArchive(b releaseBinary) string { return "images/" + b.name + ".oci.tar" }

// releaseImage is the linux/amd64+arm64 index of one binary.
func (r *release) releaseImage(b releaseBinary) (v1.ImageIndex, error) {
	spec := imageSpec{name: b.name, pkg: b.pkg, user: "65532:65532", labels: map[string]string{
		"org.opencontainers.image.title":    "loopguard " + b.name,
		"org.opencontainers.image.version":  r.version,
		"org.opencontainers.image.revision": r.commit,
		"org.opencontainers.image.source":   "https://github.com/loopguard/loopguard",
		"org.opencontainers.image.licenses": "Apache-2.0",
	}}
	// The user, entrypoint and arguments of the dev images (specs).
	for _, s := range specs {
		if s.pkg == b.pkg {
			spec.user, spec.cmd = s.user, s.cmd
		}
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range linuxPlatforms {
		img, err := buildImageFor(spec, r.binPath(p, b.name), p.arch, true)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", b.name, p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: p.os, Architecture: p.arch},
		}})
	}
	return idx, nil
}

// writeImages writes each image as an OCI layout archive and lists the
// references with their index digests in images.txt.
func (r *release) writeImages(context.Context) error {
	var list []string
	for _, b := range releaseBinaries {
		if b.image == "" {
			continue
		}
		idx, err := r.releaseImage(b)
		if err != nil {
			return err
		}
		ref := r.imageRef(b.image)
		if err := writeImageArchive(filepath.Join(r.out, imageArchive(b)), r.work, idx, ref, r.version, r.epoch); err != nil {
			return err
		}
		digest, err := idx.Digest()
		if err != nil {
			return err
		}
		list = append(list, fmt.Sprintf("%s@%s %s", ref, digest, imageArchive(b)))
	}
	return os.WriteFile(filepath.Join(r.out, "images.txt"), []byte(strings.Join(list, "\n")+"\n"), 0o644)
}

// writeImageArchive writes idx as an OCI layout archive at path, named ref
// (and tag version) in index.json for containerd; tmp holds the layout
// while it is written.
func writeImageArchive(path, tmp string, idx v1.ImageIndex, ref, version string, mtime time.Time) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	full := tag.Name() // containerd's spelling: docker.io for Docker Hub
	if tag.RegistryStr() == name.DefaultRegistry {
		full = "docker.io/" + tag.RepositoryStr() + ":" + tag.TagStr()
	}
	dir, err := os.MkdirTemp(tmp, "layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		annotationContainerdName: full, annotationRefName: version,
	})); err != nil {
		return err
	}
	return tarDir(path, dir, mtime)
}

// writeSBOMs writes a CycloneDX SBOM of each image's binary (the
// linux/amd64 one; both architectures build the same modules), from the
// module list the go command embedded in it (cyclonedx-gomod bin): what the
// image really holds, the Go standard library included. No timestamp and
// no serial number, so the same build gives the same SBOM.
func (r *release) writeSBOMs(ctx context.Context) error {
	for _, b := range releaseBinaries {
		if b.image == "" {
			continue
		}
		out := filepath.Join(r.out, "sbom", b.name+".cdx.json")
		if _, err := runIn(ctx, r.root, nil, r.sbomTool, "bin", "-json", "-std", "-noserial", "-notimestamp",
			"-version", r.version, "-output", out, r.binPath(platform{"linux", "amd64"}, b.name)); err != nil {
			return err
		}
	}
	return nil
}

type archiveFile struct {
	name string
	mode int64
	data []byte
}

// writeTarGz writes a reproducible .tar.gz of files (fixed owner and time).
func writeTarGz(path string, files []archiveFile, mtime time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	gz.ModTime = mtime
	tw := tar.NewWriter(gz)
	for _, af := range files {
		hdr := &tar.Header{Name: af.name, Mode: af.mode, Size: int64(len(af.data)), ModTime: mtime,
			Typeflag: tar.TypeReg, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(af.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}

// tarDir writes the files under dir into an uncompressed tar, sorted, with
// fixed times: an OCI layout archive.
func tarDir(path, dir string, mtime time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(names)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, p := range names {
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Format: tar.FormatPAX}
		if st.IsDir() {
			hdr.Name += "/"
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
