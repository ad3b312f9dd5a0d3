package main

import (
	"fmt"
	"strings"
)

// PodIPAnnotation is where bench/scalelarge writes the IP a pod is to get.
const PodIPAnnotation = "scale.loopguard.io/pod-ip"

// podIPsLine is how kwok's pod-ready stage picks a pod's IPs: a new one from
// the node's pool on every render.
const podIPsLine = `{{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}`

// podReady returns kwok's pod-ready stage with the pod's IP taken from
// PodIPAnnotation when it is there. kwok v0.8.0 sometimes plays the stage
// again from a stale event of a pod it already made Running; with a new IP
// from the pool, its status patch adds a second IP of the family, which the
// API server refuses, and kwok retries it for ever (tens of thousands of
// pods, 24 refused patches a second at 150,000 pods). With the planned IP,
// the replay patches the same IP and is accepted once.
func podReady(stage string) (string, error) {
	if strings.Count(stage, podIPsLine) != 1 {
		return "", fmt.Errorf("kwok's pod-ready stage no longer picks pod IPs with %q: update bench/tools/kwok/config", podIPsLine)
	}
	planned := `{{ $podIPs := list }}` +
		`{{ with .metadata.annotations }}{{ with index . "` + PodIPAnnotation + `" }}{{ $podIPs = list . }}{{ end }}{{ end }}` +
		`{{ if not $podIPs }}` + strings.Replace(podIPsLine, ":=", "=", 1) + `{{ end }}`
	return strings.Replace(stage, podIPsLine, planned, 1), nil
}
