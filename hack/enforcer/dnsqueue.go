package main

import (
	"context"
	"fmt"
	"time"

	"github.com/florianl/go-nfqueue"
	"k8s.io/klog/v2"
)

// holdQueue binds NFQUEUE num for the life of ctx and accepts whatever
// arrives there (nothing does: no rule sends to it).
//
// Why: with AdminNetworkPolicy on, the library also starts a DNS agent on
// queue QueueID+1 for FQDN peers. Its nftables rules cannot load on this
// kernel, so its Run returns and closes its queue socket while the
// receiving goroutine, still running on the controller's context, spins
// on the closed socket, logging every failure (gigabytes, and a core). A
// queue already bound by another socket makes the agent's bind fail
// before that goroutine starts: it logs once and exits. FQDN peers are
// not enforced; loopguard does not use them.
func holdQueue(ctx context.Context, num int) error {
	q, err := nfqueue.Open(&nfqueue.Config{
		NfQueue:      uint16(num),
		MaxPacketLen: 128,
		MaxQueueLen:  16,
		Copymode:     nfqueue.NfQnlCopyPacket,
		WriteTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		return fmt.Errorf("failed to open NFQUEUE %d: %w", num, err)
	}
	accept := func(a nfqueue.Attribute) int {
		_ = q.SetVerdict(*a.PacketID, nfqueue.NfAccept)
		return 0
	}
	stop := func(err error) int {
		if ctx.Err() == nil {
			klog.ErrorS(err, "held NFQUEUE failed", "queue", num)
		}
		return 1 // stop receiving: never spin on a broken socket
	}
	if err := q.RegisterWithErrorFunc(ctx, accept, stop); err != nil {
		q.Close()
		return fmt.Errorf("failed to bind NFQUEUE %d: %w", num, err)
	}
	go func() {
		<-ctx.Done()
		q.Close()
	}()
	return nil
}
