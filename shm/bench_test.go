//go:build linux

package shm

import (
	"fmt"
	"math"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func BenchmarkCreateClose(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int64
		opt  Options
	}{
		{"memfd/1MiB", 1 << 20, Options{}},
		{"named/1MiB", 1 << 20, Options{Name: prefix + "bench"}},
		{"memfd/64MiB", 64 << 20, Options{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(bc.size)
			b.ReportAllocs()
			for b.Loop() {
				s, err := Create(bc.size, bc.opt)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The cost of the two futex calls when they do not sleep: what a signaller
// pays for an unconditional Wake, and a waiter for a lost race.
func BenchmarkFutexSyscall(b *testing.B) {
	var w uint32 = 1
	b.Run("wake-no-waiter", func(b *testing.B) {
		for b.Loop() {
			Wake(&w, 1)
		}
	})
	b.Run("wait-mismatch", func(b *testing.B) {
		for b.Loop() {
			Wait(&w, 0, 0)
		}
	})
}

// Ping-pong between two processes over one sequence word of a shared
// segment: the parent makes it odd, the child even. Modes:
//
//   - futex: wait in the kernel at once, wake unconditionally;
//   - spin: poll the word, never call the kernel (costs a CPU per waiter);
//   - spin-futex-N: poll N times, then announce sleeping in a flag and wait;
//     the signaller calls Wake only when the flag is set.
const (
	modeFutex = iota
	modeSpin
	modeSpinFutex
)

var handoffModes = []struct {
	name string
	mode uint32
	spin uint32 // polls before sleeping, for modeSpinFutex
}{
	{"futex", modeFutex, 0},
	{"spin", modeSpin, 0},
	{"spin-futex-2k", modeSpinFutex, 2_000},
	{"spin-futex-20k", modeSpinFutex, 20_000},
}

// Word indices of the ping-pong layout, each word on its own 64-byte line.
const (
	ppSeq        = 0  // byte 0: the sequence word
	ppParentWait = 16 // byte 64: the parent is (about to be) asleep on seq
	ppChildWait  = 32 // byte 128: the child is (about to be) asleep on seq
	ppMode       = 48 // byte 192
	ppSpin       = 49 // byte 196, polls before sleeping
	ppReady      = 64 // byte 256
	ppStop       = math.MaxUint32
)

type pinger struct {
	seq, mine, peer *uint32 // mine and peer: the sleep announcements
	mode, spin      uint32
}

// await waits until the sequence word is want or ppStop and returns it.
func (p *pinger) await(want uint32) (uint32, error) {
	var end time.Time // set lazily: time.Now would weigh on fast handoffs
	for i := 0; ; i++ {
		v := atomic.LoadUint32(p.seq) // seq-cst: acquires the peer's writes before its store
		if v == want || v == ppStop {
			return v, nil
		}
		switch {
		case p.mode == modeFutex:
		case p.mode == modeSpin || i < int(p.spin):
			if i%(1<<20) == 1<<20-1 {
				if end.IsZero() {
					end = time.Now().Add(deadline)
				} else if time.Now().After(end) {
					return v, fmt.Errorf("no handoff in %v", deadline)
				}
			}
			continue
		default: // modeSpinFutex, done spinning
			// Dekker handshake with signal: we store mine then load seq,
			// the signaller stores seq then loads mine. Both are seq-cst,
			// so at least one of us sees the other's store: either we see
			// the new seq here, or the signaller sees mine == 1 and wakes
			// us. A store landing between this load and the sleep makes
			// Wait return at once (the kernel compares seq with v).
			atomic.StoreUint32(p.mine, 1) // seq-cst: ordered before the load below
			// seq-cst: cannot be reordered before the store to mine above.
			if v = atomic.LoadUint32(p.seq); v == want || v == ppStop {
				atomic.StoreUint32(p.mine, 0) // seq-cst, though relaxed would do: nobody waits on mine
				return v, nil
			}
		}
		err := Wait(p.seq, v, deadline)
		if p.mode == modeSpinFutex {
			atomic.StoreUint32(p.mine, 0) // seq-cst, though relaxed would do: awake, the signaller may skip Wake
			i = 0
		}
		if err != nil {
			return v, err
		}
	}
}

// signal publishes v and wakes the peer if it may be asleep.
func (p *pinger) signal(v uint32) error {
	atomic.StoreUint32(p.seq, v) // seq-cst: publishes our earlier writes, ordered before the load of peer
	// seq-cst: this load of peer cannot pass the store to seq above.
	if p.mode == modeFutex || p.mode == modeSpinFutex && atomic.LoadUint32(p.peer) != 0 {
		_, err := Wake(p.seq, 1)
		return err
	}
	return nil
}

func init() {
	helpers["pingpong"] = func(conn *net.UnixConn) error {
		s, err := recvSegment(conn)
		if err != nil {
			return err
		}
		defer s.Close()
		w, err := View[uint32](s, 0, 128)
		if err != nil {
			return err
		}
		// Plain reads: the parent wrote these before sending the descriptor.
		p := pinger{seq: &w[ppSeq], mine: &w[ppChildWait], peer: &w[ppParentWait], mode: w[ppMode], spin: w[ppSpin]}
		if err := setWord(&w[ppReady], 1); err != nil {
			return err
		}
		for want := uint32(1); ; want += 2 {
			v, err := p.await(want)
			if err != nil || v == ppStop {
				return err
			}
			if err := p.signal(want + 1); err != nil {
				return err
			}
		}
	}
}

// BenchmarkHandoff measures a round trip between two processes (two
// handoffs); ns/handoff is half of it, the latency from a store in one
// process to the return of the wait in the other.
func BenchmarkHandoff(b *testing.B) {
	for _, m := range handoffModes {
		b.Run(m.name, func(b *testing.B) {
			s := create(b, 4096, Options{})
			w, _ := View[uint32](s, 0, 128)
			w[ppMode], w[ppSpin] = m.mode, m.spin // plain: the child maps s later
			c := spawn(b, "pingpong")
			c.sendSegment(b, s)
			if err := awaitWord(&w[ppReady], 1); err != nil {
				b.Fatal(err)
			}
			p := pinger{seq: &w[ppSeq], mine: &w[ppParentWait], peer: &w[ppChildWait], mode: m.mode, spin: m.spin}
			n := 0
			for b.Loop() {
				next := uint32(2*n + 1)
				if err := p.signal(next); err != nil {
					b.Fatal(err)
				}
				if _, err := p.await(next + 1); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*n), "ns/handoff")
			if err := p.signal(ppStop); err != nil {
				b.Fatal(err)
			}
			c.wait(b)
		})
	}
}
