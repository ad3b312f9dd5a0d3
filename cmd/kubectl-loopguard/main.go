// Command kubectl-loopguard is the loopguard CLI as a kubectl plugin: on
// PATH, `kubectl loopguard check ...` and `kubectl loopguard audit ...` run
// the same command tree as the loopguard binary. See docs/cli.md.
package main

import (
	"os"

	"github.com/loopguard/loopguard/internal/cli"
)

func main() {
	os.Exit(cli.Main("kubectl-loopguard"))
}
