package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

// SARIF 2.1.0 (https://docs.oasis-open.org/sarif/sarif/v2.1.0/), the subset
// code scanning tools read: one rule per finding reason, one result per
// finding located at file:line.

const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	projectURL   = "https://github.com/loopguard/loopguard"
	// sarifStdinURI is the artifact URI of objects read from standard input.
	sarifStdinURI = "stdin"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

// sarifInvocation says whether check could judge its input; when it could
// not, the errors are its notifications.
type sarifInvocation struct {
	ExecutionSuccessful bool                `json:"executionSuccessful"`
	Notifications       []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string              `json:"id"`
	Name             string              `json:"name"`
	ShortDescription sarifMessage        `json:"shortDescription"`
	FullDescription  sarifMessage        `json:"fullDescription"`
	HelpURI          string              `json:"helpUri,omitempty"`
	Help             sarifMessage        `json:"help"`
	DefaultConfig    sarifConfiguration  `json:"defaultConfiguration"`
	Properties       sarifRuleProperties `json:"properties"`
}

// sarifRuleProperties are what code scanning reads from a rule's property
// bag: security-severity (a number, as a string) ranks its alerts.
type sarifRuleProperties struct {
	SecuritySeverity string   `json:"security-severity"`
	Tags             []string `json:"tags,omitempty"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifMessage      `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints,omitempty"`
	Properties          sarifProperties   `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           *sarifRegion          `json:"region,omitempty"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine,omitempty"`
}

type sarifProperties struct {
	Action   string         `json:"action"`
	Object   reportObject   `json:"object"`
	Field    string         `json:"field"`
	Port     int32          `json:"port,omitempty"`
	Protocol string         `json:"protocol,omitempty"`
	Policies []reportPolicy `json:"policies"`
}

// sarifReasons are the finding reasons check reports, in the fixed order
// of the run's rule list; every one has a sarifRuleText.
var sarifReasons = rules.ObjectReasons

// sarifRuleText describes the rule of one reason. severity is the
// security-severity code scanning ranks alerts by (0.1-3.9 low, 4.0-6.9
// medium, 7.0-8.9 high, 9.0-10.0 critical): every reason exposes a port
// meant for the pod's own loopback; publishing it on the node, or sharing
// the node's loopback, reaches further than the pod network.
type sarifRuleText struct {
	name, short, full, help, severity string
}

var sarifRuleTexts = map[string]sarifRuleText{
	rules.ReasonContainerPort: {"LoopbackPortDeclared",
		"A container declares a loopback-only port as a containerPort",
		"A container, init container or sidecar of a pod a LoopbackService or ClusterLoopbackService selects declares a protected port as a containerPort, which says it serves the port on the pod IP.",
		"Remove the containerPort; the container must bind 127.0.0.1.", "7.5"},
	rules.ReasonHostPort: {"LoopbackPortPublishedOnNode",
		"A loopback-only port is published on the node with hostPort",
		"A protected containerPort has a hostPort, which publishes it on the node's address.",
		"Remove the containerPort and its hostPort; the container must bind 127.0.0.1.", "8.8"},
	rules.ReasonHostNetwork: {"LoopbackOnNodeNetwork",
		"A protected pod uses the node's network",
		"A pod with loopback-only ports sets hostNetwork: true: its loopback is the node's, shared with every hostNetwork pod and node process, and no NetworkPolicy applies.",
		"Set hostNetwork: false, or set the policy's hostNetwork to Audit.", "8.8"},
	rules.ReasonServiceTarget: {"ServiceTargetsLoopbackPort",
		"A Service targets a loopback-only port",
		"A Service port's targetPort (numeric, named, or defaulted to port) reaches a protected port of pods it selects.",
		"Target a port the pods serve on their pod IP, or narrow spec.selector so it selects no protected pod.", "7.5"},
	rules.ReasonSelectedByService: {"PodSelectedByExposingService",
		"A Service selects the pod and targets its loopback-only port",
		"A pod or pod template has labels that a Service selects, and that Service targets one of the pod's protected ports.",
		"Change the pod's labels so the Service does not select it, or fix the Service.", "7.5"},
	rules.ReasonEndpointTarget: {"EndpointsRouteToLoopbackPort",
		"A hand-written EndpointSlice or Endpoints object routes to a loopback-only port",
		"An EndpointSlice or Endpoints object behind a Service without a selector names the IP of a pod a policy protects (or the pod itself) and one of its protected ports, so the Service routes to a port meant for the pod's loopback.",
		"Remove the address or the port from the EndpointSlice or Endpoints object, or give the Service a selector.", "7.5"},
}

// sarifRules are the rules, one per reason, in sarifReasons' order.
var sarifRules = func() []sarifRule {
	out := make([]sarifRule, len(sarifReasons))
	for i, reason := range sarifReasons {
		t := sarifRuleTexts[reason]
		out[i] = sarifRule{
			ID: reason, Name: t.name,
			ShortDescription: sarifMessage{t.short}, FullDescription: sarifMessage{t.full}, Help: sarifMessage{t.help},
			HelpURI:       projectURL + "#what-loopguard-refuses",
			DefaultConfig: sarifConfiguration{Level: "error"},
			Properties:    sarifRuleProperties{SecuritySeverity: t.severity, Tags: []string{"security", "kubernetes"}},
		}
	}
	return out
}()

// sarifLevel maps an enforcement action to a result level.
func sarifLevel(a v1alpha1.EnforcementAction) string {
	switch a {
	case v1alpha1.ActionDeny:
		return "error"
	case v1alpha1.ActionWarn:
		return "warning"
	default:
		return "note"
	}
}

// sarifURI turns a file name into an artifact URI: relative paths stay
// relative (code scanning resolves them against the repository),
// absolute ones become file URIs.
func sarifURI(file string) string {
	if file == stdinName {
		return sarifStdinURI
	}
	slashed := filepath.ToSlash(file)
	if filepath.IsAbs(file) {
		return (&url.URL{Scheme: "file", Path: slashed}).String()
	}
	slashed = strings.TrimPrefix(slashed, "./")
	return (&url.URL{Path: slashed}).String()
}

func newSARIFRun() sarifRun {
	return sarifRun{
		Tool:    sarifTool{Driver: sarifDriver{Name: "loopguard", Version: version(), InformationURI: projectURL, Rules: sarifRules}},
		Results: []sarifResult{},
	}
}

// writeSARIFError writes the log of a run that could not judge its input:
// no results, executionSuccessful false, and each error as a notification
// (at its file and line when it has one), so that code scanning shows why
// instead of refusing an empty upload.
func writeSARIFError(w io.Writer, err error) error {
	var notes []sarifNotification
	var ies inputErrors
	if errors.As(err, &ies) {
		for _, e := range ies {
			n := sarifNotification{Level: "error", Message: sarifMessage{Text: e.Error()}}
			if e.file != "" {
				loc := sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: sarifURI(e.file)}}
				if e.line > 0 {
					loc.Region = &sarifRegion{StartLine: e.line}
				}
				n.Locations = []sarifLocation{{PhysicalLocation: loc}}
			}
			notes = append(notes, n)
		}
	} else {
		notes = []sarifNotification{{Level: "error", Message: sarifMessage{Text: err.Error()}}}
	}
	run := newSARIFRun()
	run.Invocations = []sarifInvocation{{ExecutionSuccessful: false, Notifications: notes}}
	return writeJSON(w, sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}

func writeSARIF(w io.Writer, results []checkResult) error {
	index := map[string]int{}
	for i, r := range sarifRules {
		index[r.ID] = i
	}
	run := newSARIFRun()
	run.Invocations = []sarifInvocation{{ExecutionSuccessful: true}}
	for _, r := range results {
		f := r.finding
		ns := r.object.namespace
		// A rendered manifest points at its template or kustomization as
		// a whole: the line is the rendered output's, not the file's.
		file, line := r.file, r.line
		if f, rendered := renderedFrom(r.file); rendered {
			file, line = f, 1
		}
		sum := sha256.Sum256([]byte(strings.Join([]string{f.Object.Kind, ns, f.Object.Name, f.Field, f.Reason, f.Related}, "\x00")))
		run.Results = append(run.Results, sarifResult{
			RuleID:    f.Reason,
			RuleIndex: index[f.Reason],
			Level:     sarifLevel(f.Action),
			Message:   sarifMessage{Text: f.Message()},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysicalLocation{
				ArtifactLocation: sarifArtifactLocation{URI: sarifURI(file)},
				Region:           &sarifRegion{StartLine: line},
			}}},
			PartialFingerprints: map[string]string{"loopguardFinding/v1": hex.EncodeToString(sum[:16])},
			Properties: sarifProperties{
				Action: string(f.Action), Field: f.Field, Port: f.Port, Protocol: string(f.Protocol),
				Object:   reportObject{Kind: f.Object.Kind, Namespace: ns, Name: f.Object.Name},
				Policies: reportPolicies(f.Policies),
			},
		})
	}
	return writeJSON(w, sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}
