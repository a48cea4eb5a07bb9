//go:build linux

package shm

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func TestWaitMismatch(t *testing.T) {
	var w uint32 = 1
	if err := Wait(&w, 0, deadline); err != nil { // returns at once: 1 != 0
		t.Fatal(err)
	}
}

func TestWaitTimeout(t *testing.T) {
	var w uint32
	err := Wait(&w, 0, 10*time.Millisecond)
	if err != ErrTimeout || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Wait: %v, want ErrTimeout", err)
	}
	if te, ok := err.(interface{ Timeout() bool }); !ok || !te.Timeout() {
		t.Fatal("ErrTimeout has no Timeout() == true")
	}
}

func TestFutexBadWord(t *testing.T) {
	var buf [8]uint32
	odd := (*uint32)(unsafe.Add(unsafe.Pointer(&buf[0]), 1))
	for _, addr := range []*uint32{nil, odd} {
		if err := Wait(addr, 0, time.Millisecond); !errors.Is(err, ErrInvalid) {
			t.Errorf("Wait(%p): %v, want ErrInvalid", addr, err)
		}
		if _, err := Wake(addr, 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("Wake(%p): %v, want ErrInvalid", addr, err)
		}
	}
	if _, err := Wake(&buf[0], -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("Wake(-1): %v, want ErrInvalid", err)
	}
	if n, err := Wake(&buf[0], 1); n != 0 || err != nil {
		t.Errorf("Wake without waiters: %d, %v", n, err)
	}
}

func TestFutexNoAllocs(t *testing.T) {
	var w uint32 = 1
	if n := testing.AllocsPerRun(100, func() {
		Wait(&w, 0, time.Second)
		Wake(&w, 1)
	}); n != 0 {
		t.Fatalf("Wait+Wake allocate %v times", n)
	}
}

func TestWaitWakeGoroutines(t *testing.T) {
	s := create(t, 4096, Options{})
	w, _ := View[uint32](s, 0, 1)
	done := make(chan error, 1)
	go func() { done <- awaitWord(&w[0], 1) }()
	if err := setWord(&w[0], 1); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Layout of the words the cross-process tests share, each on its own
// 64-byte line: indices into a []uint32 (or []uint64 for wordCount) view
// from offset 0.
const (
	wordGo    = 0  // byte 0, parent -> child: proceed
	wordReady = 16 // byte 64, child -> parent: mapped and waiting
	wordAck   = 32 // byte 128, child -> parent: done
	wordCount = 24 // byte 192, uint64: the shared counter
)

func init() {
	helpers["futex-wait"] = func(conn *net.UnixConn) error {
		s, err := recvSegment(conn)
		if err != nil {
			return err
		}
		defer s.Close()
		w, err := View[uint32](s, 0, 64)
		if err != nil {
			return err
		}
		if err := setWord(&w[wordReady], 1); err != nil {
			return err
		}
		// Sleep in the kernel until the parent's Wake, re-checking the
		// word after every return as callers of Wait must.
		if err := awaitWord(&w[wordGo], 1); err != nil {
			return err
		}
		return setWord(&w[wordAck], 1)
	}
}

// A child sleeps in Wait on a word of a shared memfd; the parent wakes it.
func TestFutexCrossProcess(t *testing.T) {
	s := create(t, 4096, Options{})
	w, _ := View[uint32](s, 0, 64)
	c := spawn(t, "futex-wait")
	c.sendSegment(t, s)
	if err := awaitWord(&w[wordReady], 1); err != nil {
		t.Fatal(err)
	}
	// Wake without changing the word until a sleeper was actually woken:
	// that proves a Wake here reaches a Wait in the other process. The
	// child re-checks, finds 0 and sleeps again.
	end := time.Now().Add(deadline)
	for {
		n, err := Wake(&w[wordGo], 1)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the child never slept on the futex")
		}
		time.Sleep(time.Millisecond)
	}
	if err := setWord(&w[wordGo], 1); err != nil {
		t.Fatal(err)
	}
	if err := awaitWord(&w[wordAck], 1); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
}

const adds = 1_000_000

func init() {
	helpers["atomic-add"] = func(conn *net.UnixConn) error {
		s, err := recvSegment(conn)
		if err != nil {
			return err
		}
		defer s.Close()
		w, _ := View[uint32](s, 0, 64)
		u, _ := View[uint64](s, 0, 32)
		if err := setWord(&w[wordReady], 1); err != nil {
			return err
		}
		if err := awaitWord(&w[wordGo], 1); err != nil {
			return err
		}
		for range adds {
			atomic.AddUint64(&u[wordCount], 1) // seq-cst read-modify-write
		}
		return nil
	}
}

// Two processes increment one word of a shared segment concurrently; no
// increment is lost.
func TestAtomicsCrossProcess(t *testing.T) {
	s := create(t, 4096, Options{})
	w, _ := View[uint32](s, 0, 64)
	u, _ := View[uint64](s, 0, 32)
	c := spawn(t, "atomic-add")
	c.sendSegment(t, s)
	if err := awaitWord(&w[wordReady], 1); err != nil {
		t.Fatal(err)
	}
	if err := setWord(&w[wordGo], 1); err != nil {
		t.Fatal(err)
	}
	for range adds {
		atomic.AddUint64(&u[wordCount], 1) // seq-cst read-modify-write
	}
	c.wait(t)
	// seq-cst load; the child's adds are also ordered before its exit, which
	// c.wait observed.
	if got := atomic.LoadUint64(&u[wordCount]); got != 2*adds {
		t.Fatalf("counter is %d, want %d", got, 2*adds)
	}
}
