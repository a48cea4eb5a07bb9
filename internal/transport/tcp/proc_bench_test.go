package tcp

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// The Proc benchmarks put rank 1 in a child process (this test binary,
// re-executed into TestPeerProcess), as a real job does, so the numbers
// compare directly with the two-process MPI and C baselines in
// /work/shared/bench. The in-process benchmarks share one Go scheduler and
// netpoller between both ranks, which flatters parking and hurts spinning.

const (
	envPeer = "GORUN_TCP_BENCH_PEER" // rank 0's address: run TestPeerProcess as rank 1
	envSpin = "GORUN_TCP_BENCH_SPIN" // "1": rank 1 spins too
)

// peerHandler is rank 1 in the child: it echoes KindEager frames, swallows
// KindData frames and acknowledges those with Arg0 == 1.
type peerHandler struct {
	e   chan transport.Endpoint
	ep  transport.Endpoint
	buf []byte
}

func (h *peerHandler) HandleFrame(from int, hd wire.Header, b transport.Body) error {
	if h.ep == nil {
		h.ep = <-h.e
	}
	p := h.buf[:b.Len()]
	if err := b.ReadInto(p); err != nil {
		return err
	}
	switch {
	case hd.Kind == wire.KindEager:
		return h.ep.Send(hd, p)
	case hd.Arg0 == 1:
		return h.ep.Send(wire.Header{Kind: wire.KindEager}, nil)
	}
	return nil
}
func (h *peerHandler) PeerLost(from int, err error) { os.Exit(3) }

// TestPeerProcess is not a test: it is rank 1 of the Proc benchmarks, run
// in a child process. It serves until its stdin closes.
func TestPeerProcess(t *testing.T) {
	addr := os.Getenv(envPeer)
	if addr == "" {
		t.Skip("helper process for the Proc benchmarks")
	}
	var spin func() bool
	if os.Getenv(envSpin) == "1" {
		spin = spinAlways
	}
	tr, err := Listen(Config{Secret: testSecret, Self: 1, Spin: spin})
	if err != nil {
		t.Fatal(err)
	}
	h := &peerHandler{e: make(chan transport.Endpoint, 1), buf: make([]byte, 16<<20)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eps, err := tr.Connect(ctx, []string{addr, tr.Addr()}, h)
	if err != nil {
		t.Fatal(err)
	}
	h.e <- eps[0]
	io.Copy(io.Discard, os.Stdin)
	eps[0].Close()
	tr.Close()
}

// procPair starts the child and connects to it as rank 0.
func procPair(b *testing.B, spin func() bool, h transport.Handler) transport.Endpoint {
	b.Helper()
	tr, err := Listen(Config{Secret: testSecret, Self: 0, Spin: spin})
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeerProcess$")
	cmd.Env = append(os.Environ(), envPeer+"="+tr.Addr())
	if spin != nil {
		cmd.Env = append(cmd.Env, envSpin+"=1")
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eps, err := tr.Connect(ctx, []string{tr.Addr(), "child"}, h)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		eps[1].Close()
		stdin.Close()
		cmd.Wait()
		tr.Close()
	})
	return eps[1]
}

func BenchmarkPingPongProc(b *testing.B) {
	for _, m := range spinModes {
		for _, size := range []int{8, 1 << 10} {
			b.Run(m.name+"/"+sizeName(size), func(b *testing.B) {
				ping := &pinger{buf: make([]byte, size), n: b.N, done: make(chan struct{})}
				e := procPair(b, m.spin, ping)
				ping.e.Store(&e)
				b.SetBytes(int64(2 * size))
				b.ReportAllocs()
				b.ResetTimer()
				if err := e.Send(wire.Header{Kind: wire.KindEager}, ping.buf); err != nil {
					b.Fatal(err)
				}
				<-ping.done
				b.StopTimer()
				reportHop(b)
			})
		}
	}
}

func BenchmarkStreamProc(b *testing.B) {
	for _, m := range spinModes {
		for _, size := range []int{64 << 10, 1 << 20, 16 << 20} {
			b.Run(fmt.Sprintf("%s/%s", m.name, sizeName(size)), func(b *testing.B) {
				ack := make(signal, 1)
				e := procPair(b, m.spin, ack)
				src := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					h := wire.Header{Kind: wire.KindData}
					if i == b.N-1 {
						h.Arg0 = 1
					}
					if err := e.Send(h, src); err != nil {
						b.Fatal(err)
					}
				}
				<-ack
			})
		}
	}
}
