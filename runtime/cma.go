package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/gorun-hpc/gorun/internal/wire"
	"golang.org/x/sys/unix"
)

// Single copy between ranks of one node (cross-memory attach), on when
// "cma" is named among the transports (GORUN_TRANSPORTS=self,shm,tcp,cma):
// on this 2-vCPU VM process_vm_readv moves 6 GB/s at 1 MiB against 25 GB/s
// for memcpy, and the 1 MiB ping-pong measured 1.34× slower than through
// the ring, so it is not the default (docs/performance.md).
//
// Through the shared-memory ring a rendezvous message is copied twice
// (into the ring, out of it) and its data is pushed by a goroutine of the
// sender that competes with the waiting caller for the core. When the
// peer is reached over shared memory, the sender's RTS carries instead the
// address of its buffer (wire.FlagCMA, an 8-byte payload), and a receiver
// whose buffer is large enough copies the data straight out of the
// sender's memory with process_vm_readv(2), then answers with a CTS that
// has FlagCMA set: the send is complete, no Data frame follows. If the
// kernel refuses (containers often forbid the call, and ptrace rules may),
// the receiver turns single copy off for that peer and answers with an
// ordinary CTS, so the data comes through the ring as before.
//
// The sender's buffer stays valid until its request completes, which is
// after the receiver's answer: the request holds the slice, and Go's heap
// does not move objects.

// cmaCopy copies len(dst) bytes from addr in process pid into dst. Tests
// replace it to exercise the fallback.
var cmaCopy = processVMRead

// cmaCopies counts the messages moved by single copy (tests read it).
var cmaCopies atomic.Int64

func processVMRead(pid int, dst []byte, addr uint64) error {
	for len(dst) > 0 {
		local := []unix.Iovec{{Base: unsafe.SliceData(dst)}}
		local[0].SetLen(len(dst))
		remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(dst)}}
		n, err := unix.ProcessVMReadv(pid, local, remote, 0)
		if err != nil {
			return fmt.Errorf("process_vm_readv from pid %d: %w", pid, err)
		}
		if n <= 0 {
			return errors.New("process_vm_readv made no progress")
		}
		dst, addr = dst[n:], addr+uint64(n)
	}
	return nil
}

// rtsPayload returns the RTS payload and flags for a rendezvous send of b
// to world rank to: b's address when single copy to that rank is on.
func (w *world) rtsPayload(to int, b []byte) ([]byte, uint8) {
	if len(b) == 0 || !w.cma[to].Load() {
		return nil, 0
	}
	return binary.LittleEndian.AppendUint64(nil, uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))), wire.FlagCMA
}

// rtsAddr returns the sender's buffer address an RTS carries, or 0.
func rtsAddr(h wire.Header, payload []byte) (uint64, error) {
	if h.Flags&wire.FlagCMA == 0 {
		return 0, nil
	}
	if len(payload) != 8 {
		return 0, fmt.Errorf("RTS with a single-copy payload of %d bytes", len(payload))
	}
	return binary.LittleEndian.Uint64(payload), nil
}

// singleCopy completes the receive r, matched with an RTS of world rank from
// whose data is at addr, by copying it out of the sender's memory; cts is
// the answer acceptRTSLocked prepared. If the copy fails, it falls back to
// the ordinary rendezvous. send delivers a CTS to from.
func (w *world) singleCopy(r *Request, from int, addr uint64, cts wire.Header, send func(wire.Header) error) error {
	err := cmaCopy(w.pids[from], r.buf[:r.status.Bytes], addr)
	if err == nil {
		cmaCopies.Add(1)
		err = send(cts)
		r.complete(err)
		return err
	}
	w.log.Debug("runtime: single copy refused; using the ring for this peer", "peer", from, "err", err)
	w.cma[from].Store(false)
	w.mu.Lock()
	if e := w.errLocked(); e != nil {
		w.mu.Unlock()
		r.complete(e)
		return nil
	}
	w.expectLocked(r, r.status.Bytes)
	w.mu.Unlock()
	cts.Flags, cts.Arg1 = 0, r.id
	return send(cts)
}
