// Command devtool does the parts of hack/dev.sh that need more than bash and
// coreutils: PKI generation, kubeconfig writing, rewriting the production
// webhook configuration for a webhook served on the host, and TLS/HTTP probes.
// It exists so the dev harness needs no openssl, curl, jq or yq.
// One file per job: pki.go, kubeconfig.go, webhook.go, probe.go (probe and
// wait-webhook) and proxy.go.
package main

import (
	"fmt"
	"os"
)

const usage = `usage: devtool <command> [flags]

commands:
  pki          --dir DIR [--node-name N --node-ip IP]
                                              create or refresh the dev PKI (prints regenerated files)
  kubeconfig   --server URL --ca F --cert F --key F --user NAME --out F
  webhook      --ca F --url-base URL < kustomize output > webhook configs
  probe        --url URL [--ca F] [--cert F --key F] [--status N]
                                              one request; exit 0 if it answers (with status N if N>0)
  wait-webhook --url URL --ca F [--timeout D] retry probe until the TLS handshake and a response succeed
  proxy        --listen ADDR --backends A,B    TCP round-robin (REPLICAS>1 in hack/dev.sh)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "pki":
		err = cmdPKI(args)
	case "kubeconfig":
		err = cmdKubeconfig(args)
	case "webhook":
		err = cmdWebhook(args, os.Stdin, os.Stdout)
	case "probe":
		err = cmdProbe(args)
	case "wait-webhook":
		err = cmdWaitWebhook(args)
	case "proxy":
		err = cmdProxy(args)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "devtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// ---------------------------------------------------------------- pki
