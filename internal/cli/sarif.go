package cli

import (
	"crypto/sha256"
	"encoding/hex"
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
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
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
	ID               string             `json:"id"`
	Name             string             `json:"name"`
	ShortDescription sarifMessage       `json:"shortDescription"`
	FullDescription  sarifMessage       `json:"fullDescription"`
	HelpURI          string             `json:"helpUri,omitempty"`
	Help             sarifMessage       `json:"help"`
	DefaultConfig    sarifConfiguration `json:"defaultConfiguration"`
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
	Region           sarifRegion           `json:"region"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifProperties struct {
	Action   string         `json:"action"`
	Object   reportObject   `json:"object"`
	Field    string         `json:"field"`
	Port     int32          `json:"port,omitempty"`
	Protocol string         `json:"protocol,omitempty"`
	Policies []reportPolicy `json:"policies"`
}

// sarifRules are the rules, one per reason, in a fixed order.
var sarifRules = []sarifRule{
	{
		ID: rules.ReasonContainerPort, Name: "LoopbackPortDeclared",
		ShortDescription: sarifMessage{"A container declares a loopback-only port as a containerPort"},
		FullDescription:  sarifMessage{"A container, init container or sidecar of a pod a LoopbackService or ClusterLoopbackService selects declares a protected port as a containerPort, which says it serves the port on the pod IP."},
		Help:             sarifMessage{"Remove the containerPort; the container must bind 127.0.0.1."},
	},
	{
		ID: rules.ReasonHostPort, Name: "LoopbackPortPublishedOnNode",
		ShortDescription: sarifMessage{"A loopback-only port is published on the node with hostPort"},
		FullDescription:  sarifMessage{"A protected containerPort has a hostPort, which publishes it on the node's address."},
		Help:             sarifMessage{"Remove the containerPort and its hostPort; the container must bind 127.0.0.1."},
	},
	{
		ID: rules.ReasonHostNetwork, Name: "LoopbackOnNodeNetwork",
		ShortDescription: sarifMessage{"A protected pod uses the node's network"},
		FullDescription:  sarifMessage{"A pod with loopback-only ports sets hostNetwork: true: its loopback is the node's, shared with every hostNetwork pod and node process, and no NetworkPolicy applies."},
		Help:             sarifMessage{"Set hostNetwork: false, or set the policy's hostNetwork to Audit."},
	},
	{
		ID: rules.ReasonServiceTarget, Name: "ServiceTargetsLoopbackPort",
		ShortDescription: sarifMessage{"A Service targets a loopback-only port"},
		FullDescription:  sarifMessage{"A Service port's targetPort (numeric, named, or defaulted to port) reaches a protected port of pods it selects."},
		Help:             sarifMessage{"Target a port the pods serve on their pod IP, or narrow spec.selector so it selects no protected pod."},
	},
	{
		ID: rules.ReasonSelectedByService, Name: "PodSelectedByExposingService",
		ShortDescription: sarifMessage{"A Service selects the pod and targets its loopback-only port"},
		FullDescription:  sarifMessage{"A pod or pod template has labels that a Service selects, and that Service targets one of the pod's protected ports."},
		Help:             sarifMessage{"Change the pod's labels so the Service does not select it, or fix the Service."},
	},
}

func init() {
	for i := range sarifRules {
		sarifRules[i].HelpURI = projectURL + "#what-loopguard-refuses"
		sarifRules[i].DefaultConfig = sarifConfiguration{Level: "error"}
	}
}

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
		return "stdin"
	}
	slashed := filepath.ToSlash(file)
	if filepath.IsAbs(file) {
		return (&url.URL{Scheme: "file", Path: slashed}).String()
	}
	slashed = strings.TrimPrefix(slashed, "./")
	return (&url.URL{Path: slashed}).String()
}

func writeSARIF(w io.Writer, results []checkResult) error {
	index := map[string]int{}
	for i, r := range sarifRules {
		index[r.ID] = i
	}
	run := sarifRun{
		Tool:    sarifTool{Driver: sarifDriver{Name: "loopguard", Version: version(), InformationURI: projectURL, Rules: sarifRules}},
		Results: []sarifResult{},
	}
	for _, r := range results {
		f := r.finding
		ns := r.object.namespace
		sum := sha256.Sum256([]byte(strings.Join([]string{f.Object.Kind, ns, f.Object.Name, f.Field, f.Reason, f.Related}, "\x00")))
		run.Results = append(run.Results, sarifResult{
			RuleID:    f.Reason,
			RuleIndex: index[f.Reason],
			Level:     sarifLevel(f.Action),
			Message:   sarifMessage{Text: f.Message()},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysicalLocation{
				ArtifactLocation: sarifArtifactLocation{URI: sarifURI(r.file)},
				Region:           sarifRegion{StartLine: r.line},
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
