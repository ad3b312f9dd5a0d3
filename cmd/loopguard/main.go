// Command loopguard judges manifests against loopback-only policies
// (loopguard check) and audits a live cluster (loopguard audit) with the
// rules loopguard's admission webhook runs. See docs/cli.md.
package main

import (
	"os"

	"github.com/loopguard/loopguard/internal/cli"
)

func main() {
	os.Exit(cli.Main("loopguard"))
}
