package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	lgversion "github.com/loopguard/loopguard/internal/version"
)

// version and commit are internal/version's (stamped by make release).
func version() string { return lgversion.Get() }

func commit() string { return lgversion.GetCommit() }

func newVersionCommand(streams genericiooptions.IOStreams, name string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(streams.Out, "%s %s (commit %s, %s, %s/%s)\n", name, version(), commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
