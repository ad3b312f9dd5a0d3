// Package cli is the loopguard command line: `loopguard check` runs the
// exposure rules (internal/rules, the same code the admission webhook runs)
// over manifests before they reach a cluster, and `loopguard audit` reports
// what a live cluster already exposes, with read-only calls. The same
// command tree is built as the `loopguard` binary and as the kubectl plugin
// `kubectl-loopguard`.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Exit codes, shared by every command.
const (
	// ExitOK: nothing to report, or only Warn and Audit findings.
	ExitOK = 0
	// ExitViolations: at least one finding whose action is Deny.
	ExitViolations = 1
	// ExitError: bad input or flags, or the cluster could not be read.
	ExitError = 2
)

// ExitError carries a command's exit code; Err, when set, is printed on
// stderr.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withCode returns err with an exit code.
func withCode(code int, err error) error {
	return &exitError{code: code, err: err}
}

// Main runs the command tree as the program name (loopguard or
// kubectl-loopguard) and returns the exit code.
func Main(name string) int {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	// controller-runtime's client logs nothing the user needs; without a
	// logger it would complain on stderr.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Execute(ctx, NewRootCommand(name, streams), os.Args[1:], streams.ErrOut)
}

// Execute runs cmd with args and maps its outcome to an exit code,
// printing errors on errOut.
func Execute(ctx context.Context, cmd *cobra.Command, args []string, errOut io.Writer) int {
	cmd.SetArgs(args)
	sub, err := cmd.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			printError(errOut, ee.err)
		}
		return ee.code
	}
	// Flag and argument errors from cobra.
	printError(errOut, err)
	if sub == nil {
		sub = cmd
	}
	fmt.Fprintf(errOut, "Run '%s --help' for usage.\n", sub.CommandPath())
	return ExitError
}

func printError(w io.Writer, err error) {
	var ies inputErrors
	if errors.As(err, &ies) {
		for _, e := range ies {
			fmt.Fprintf(w, "error: %s\n", e)
		}
		return
	}
	fmt.Fprintf(w, "error: %v\n", err)
}

// NewRootCommand builds the command tree. name is the binary's name:
// "loopguard", or "kubectl-loopguard" for the kubectl plugin, which then
// shows itself as "kubectl loopguard".
func NewRootCommand(name string, streams genericiooptions.IOStreams) *cobra.Command {
	display := name
	if name == "kubectl-loopguard" {
		display = "kubectl loopguard"
	}
	root := &cobra.Command{
		Use:   name,
		Short: "Catch exposed loopback-only ports before and after they reach a cluster",
		Long: `loopguard enforces "loopback-only" ports: a LoopbackService (or, cluster-wide, a
ClusterLoopbackService) declares ports that the pods it selects serve on
127.0.0.1 only, and nothing may expose them: no containerPort, hostPort or
hostNetwork, and no Service that targets them.

This command runs the same rules as loopguard's admission webhook:

  check   judges manifests (files, directories, kustomize output on stdin)
          against the policies in them or in --policies, e.g. in a pull request
  audit   reports what a live cluster already exposes, with read-only calls
  test    runs policy tests: the decision expected for each resource
  discover proposes policies from what the node agents saw listen on loopback`,
		Example: fmt.Sprintf(`  # Judge a directory of manifests against the policies in it
  %[1]s check -f k8s/

  # Judge kustomize output against the policies kept elsewhere
  kustomize build overlays/prod | %[1]s check -f - --policies policies/

  # Audit the current namespace of the live cluster, or all of them
  %[1]s audit
  %[1]s audit -A -o json`, display),
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: display},
		// No Run: without a subcommand, print help.
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.CompletionOptions.HiddenDefaultCmd = false
	root.AddCommand(
		newCheckCommand(streams, display),
		newAuditCommand(streams, display),
		newTestCommand(streams, display),
		newDiscoverCommand(streams, display),
		newVersionCommand(streams, name),
	)
	return root
}
