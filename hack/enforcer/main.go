// Command enforcer is the dev node's NetworkPolicy enforcer: test
// infrastructure, never a dependency of loopguard (which only writes
// standard NetworkPolicy objects). It runs the userspace evaluator of
// sigs.k8s.io/kube-network-policies (NetworkPolicy, and AdminNetworkPolicy /
// BaselineAdminNetworkPolicy when their CRDs are installed) on an NFQUEUE,
// and feeds that queue with an iptables hook it installs itself: the
// library's own hook is an nftables `queue` rule, and this kernel has no
// nft queue expression (CONFIG_NFT_QUEUE off), while iptables -j NFQUEUE
// works. The library still tries to load its nftables table on every sync;
// that fails (logged) and is harmless, since the iptables hook does its job.
//
// The hook sits in the filter table's FORWARD chain: pod-to-pod traffic on
// the node's bridge passes it (br_netfilter, bridge-nf-call-iptables=1),
// and so does routed pod traffic. Host-to-pod traffic (kubelet probes,
// the node address) is not queued, like the library's own exemption of
// root-owned host sockets. Only the first packet of a flow is queued;
// established flows keep going after a policy change, as with the library.
//
//	enforcer --kubeconfig .dev/admin.kubeconfig --node-name loopguard-dev-node --pod-cidr 10.244.0.0/24
//
// On SIGTERM it removes its iptables chain before exiting; `hack/dev.sh
// down` removes it too, should the process have died.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	npaclient "sigs.k8s.io/network-policy-api/pkg/client/clientset/versioned"
	npainformers "sigs.k8s.io/network-policy-api/pkg/client/informers/externalversions"
	"sigs.k8s.io/network-policy-api/pkg/client/informers/externalversions/apis/v1alpha1"

	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

// options are the command line.
type options struct {
	kubeconfig string
	nodeName   string
	podCIDR    string
	queue      int
	failOpen   bool
	anp        string
	recheck    time.Duration
}

func main() {
	var o options
	klog.InitFlags(nil)
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (required)")
	flag.StringVar(&o.nodeName, "node-name", "", "name of the node whose pods this enforcer protects (required)")
	flag.StringVar(&o.podCIDR, "pod-cidr", "", "the node's pod range; flows from or to it are queued (required)")
	flag.IntVar(&o.queue, "queue-num", 100, "NFQUEUE number for the policy verdicts (the next number is the library's DNS queue)")
	flag.BoolVar(&o.failOpen, "fail-open", true, "accept packets while no enforcer listens on the queue (iptables --queue-bypass) or the queue is full")
	flag.StringVar(&o.anp, "admin-network-policy", "auto", "evaluate AdminNetworkPolicy and BaselineAdminNetworkPolicy: auto (when their CRDs are served), on, off")
	flag.DurationVar(&o.recheck, "recheck", 5*time.Second, "how often auto looks for the AdminNetworkPolicy CRDs")
	flag.Parse()
	if o.kubeconfig == "" || o.nodeName == "" || o.podCIDR == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: enforcer --kubeconfig FILE --node-name NAME --pod-cidr CIDR [flags]")
		os.Exit(2)
	}
	switch o.anp {
	case "auto", "on", "off":
	default:
		fmt.Fprintf(os.Stderr, "--admin-network-policy: %q is not auto, on or off\n", o.anp)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		klog.ErrorS(err, "enforcer failed")
		os.Exit(1)
	}
}

// run installs the hook, runs the evaluator until ctx ends (restarting it
// when auto sees the AdminNetworkPolicy CRDs come or go) and removes the
// hook.
func run(ctx context.Context, o options) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("failed to load kubeconfig %s: %w", o.kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create the client: %w", err)
	}
	npa, err := npaclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create the network-policy-api client: %w", err)
	}
	h := hook{queue: o.queue, podCIDR: o.podCIDR, bypass: o.failOpen}
	if err := h.install(); err != nil {
		return err
	}
	defer func() {
		if err := h.remove(); err != nil {
			klog.ErrorS(err, "failed to remove the iptables hook")
		}
	}()
	if err := holdQueue(ctx, o.queue+1); err != nil {
		return err
	}
	klog.InfoS("iptables hook installed", "chain", chainName, "queue", o.queue, "podCIDR", o.podCIDR, "failOpen", o.failOpen)

	for ctx.Err() == nil {
		anp := o.anp == "on" || (o.anp == "auto" && adminPoliciesServed(client))
		if err := runUntilChange(ctx, client, npa, o, anp); err != nil && ctx.Err() == nil {
			// The queue could not be opened, or the informers failed: try
			// again rather than leave the node unenforced.
			klog.ErrorS(err, "evaluator stopped; restarting it")
			time.Sleep(time.Second)
		}
	}
	return nil
}

// runUntilChange runs the evaluator until ctx ends, it fails, or (auto)
// the AdminNetworkPolicy CRDs come or go.
func runUntilChange(ctx context.Context, client kubernetes.Interface, npa npaclient.Interface, o options, anp bool) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runEvaluator(runCtx, client, npa, o, anp) }()
	klog.InfoS("evaluator started", "adminNetworkPolicy", anp)
	tick := time.NewTicker(o.recheck)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if o.anp == "auto" && adminPoliciesServed(client) != anp {
				klog.InfoS("AdminNetworkPolicy CRDs changed; restarting the evaluator", "adminNetworkPolicy", !anp)
				cancel()
				<-done
				return nil
			}
		case <-ctx.Done():
			cancel()
			<-done
			return nil
		}
	}
}

// adminPoliciesServed reports whether the API server serves both
// AdminNetworkPolicy and BaselineAdminNetworkPolicy (v1alpha1, the version
// the library reads): its informers would otherwise never sync.
func adminPoliciesServed(client kubernetes.Interface) bool {
	list, err := client.Discovery().ServerResourcesForGroupVersion("policy.networking.k8s.io/v1alpha1")
	if err != nil {
		return false
	}
	found := map[string]bool{}
	for _, r := range list.APIResources {
		found[r.Name] = true
	}
	return found["adminnetworkpolicies"] && found["baselineadminnetworkpolicies"]
}

// runEvaluator runs one kube-network-policies controller with fresh
// informers until ctx ends.
func runEvaluator(ctx context.Context, client kubernetes.Interface, npa npaclient.Interface, o options, anp bool) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	var (
		npaFactory npainformers.SharedInformerFactory
		anpInf     v1alpha1.AdminNetworkPolicyInformer
		banpInf    v1alpha1.BaselineAdminNetworkPolicyInformer
	)
	nodes := factory.Core().V1().Nodes()
	if anp {
		npaFactory = npainformers.NewSharedInformerFactory(npa, 0)
		anpInf = npaFactory.Policy().V1alpha1().AdminNetworkPolicies()
		banpInf = npaFactory.Policy().V1alpha1().BaselineAdminNetworkPolicies()
	}
	c, err := networkpolicy.NewController(client,
		factory.Networking().V1().NetworkPolicies(),
		factory.Core().V1().Namespaces(),
		factory.Core().V1().Pods(),
		nodes, npa, anpInf, banpInf,
		networkpolicy.Config{
			FailOpen:                   o.failOpen,
			AdminNetworkPolicy:         anp,
			BaselineAdminNetworkPolicy: anp,
			QueueID:                    o.queue,
			NodeName:                   o.nodeName,
			// Pod IPs come from the API server: containerd 1.6 has no NRI.
			// The plugin stays enabled all the same: with it disabled the
			// library dereferences a nil plugin for an unknown address.
			NRIdisabled: false,
		})
	if err != nil {
		return fmt.Errorf("failed to create the evaluator: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	factory.Start(ctx.Done())
	if npaFactory != nil {
		npaFactory.Start(ctx.Done())
	}
	err = <-done
	factory.Shutdown()
	if npaFactory != nil {
		npaFactory.Shutdown()
	}
	if err != nil {
		return fmt.Errorf("evaluator: %w", err)
	}
	if ctx.Err() == nil {
		return fmt.Errorf("evaluator returned while it should run")
	}
	return nil
}
