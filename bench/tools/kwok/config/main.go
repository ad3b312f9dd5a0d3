// Command config prints the kwok configuration bench/scalelarge runs kwok
// with: kwok's own default stages (node initialisation, node heartbeat with
// leases, pod ready/complete/delete: what kwokctl installs), taken from the
// kwok module itself so they follow its version, and the node lease
// duration given as the first argument (kwok renews a lease every quarter
// of it). One change to kwok's pod-ready stage: a pod that carries the
// annotation PodIPAnnotation gets that IP (see podReady).
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodelease "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
)

func main() {
	lease := 40
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil || n < 10 || n > 3600 {
			fmt.Fprintln(os.Stderr, "usage: config [node-lease-duration-seconds, 10..3600]")
			os.Exit(2)
		}
		lease = n
	}
	ready, err := podReady(podfast.DefaultPodReady)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	docs := []string{
		fmt.Sprintf("apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions:\n  nodeLeaseDurationSeconds: %d\n  nodeLeaseParallelism: 4\n  nodePlayStageParallelism: 4\n  podPlayStageParallelism: 16\n  podsOnNodeSyncParallelism: 1\n  cidr: 10.0.0.0/24\n", lease),
		nodefast.DefaultNodeInit, nodelease.DefaultNodeHeartbeatWithLease,
		ready, podfast.DefaultPodComplete, podfast.DefaultPodDelete,
	}
	for i, d := range docs {
		if i > 0 {
			fmt.Println("---")
		}
		fmt.Print(strings.TrimSpace(d) + "\n")
	}
}
