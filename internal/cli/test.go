package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

type testOptions struct {
	output string
}

func newTestCommand(streams genericiooptions.IOStreams, display string) *cobra.Command {
	o := &testOptions{output: outputText}
	cmd := &cobra.Command{
		Use:   "test [PATH|DIR/...]...",
		Short: "Run the policy tests of a repository: expected decisions per resource, as kyverno test and gator verify do",
		Long: fmt.Sprintf(`test runs the policy tests it finds: documents of apiVersion
%[1]s and kind %[2]s. Each test names policy files, resource
files (paths relative to the test file) and the result expected for each
resource: allow, audit, warn or deny, optionally for one rule (a finding
reason: ContainerPort, ...) and one policy (lbs/NAME, clbs/NAME).

The resources are judged exactly as "check -f RESOURCES --policies POLICIES"
judges them, with the rules the admission webhook runs. A case passes when
the strictest action of the findings that count (those of its rule and
policy, when it names them) is the one expected, allow meaning none.

PATH is a test file, or a directory searched recursively (hidden
directories skipped) for .yaml and .yml files holding tests; DIR/... is the
same as DIR. Without PATH, the current directory.

Exit status: 0 when every case passes, 1 when a case fails, 2 when a test
file, or the input of a test, cannot be read, or a case names a resource or
policy that is not in its input (every error is printed as file:line).`, testAPIVersion, testKind),
		Example: fmt.Sprintf(`  # Every test under policies/
  %[1]s test ./policies/...

  # One test file, JSON for scripts
  %[1]s test examples/loopguard-test.yaml -o json | jq '.summary'`, display),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTests(o, args, streams)
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", o.output, "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputText, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runTests(o *testOptions, paths []string, streams genericiooptions.IOStreams) error {
	if o.output != outputText && o.output != outputJSON {
		return withCode(ExitError, fmt.Errorf("unknown output format %q: use text or json", o.output))
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	tests, errs := discoverTests(paths)
	sortErrors(errs)
	var runs []*testRun
	for _, t := range tests {
		runs = append(runs, runTestFile(t))
	}
	rep := newTestReport(runs, errs)
	// Errors and warnings go to stderr, whatever the format.
	for _, e := range errs {
		fmt.Fprintf(streams.ErrOut, "error: %s\n", e)
	}
	for _, r := range runs {
		for _, e := range r.errs {
			fmt.Fprintf(streams.ErrOut, "error: %s:%d: test %s cannot run: %s\n", r.test.doc.file, r.test.doc.line, r.test.name, e)
		}
		for _, w := range r.warnings {
			fmt.Fprintf(streams.ErrOut, "warning: %s: test %s: %s\n", r.test.doc.file, r.test.name, w)
		}
	}
	var err error
	if o.output == outputJSON {
		err = writeJSON(streams.Out, rep)
	} else {
		err = writeTestText(streams.Out, rep)
	}
	if err != nil {
		return withCode(ExitError, err)
	}
	switch rep.Summary.Result {
	case "error":
		return withCode(ExitError, nil)
	case "fail":
		return withCode(ExitViolations, nil)
	}
	return nil
}
