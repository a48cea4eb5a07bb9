//go:build linux

package shm

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"net"
	"os"
	"testing"
)

// OpenPeer shares an anonymous segment without a socket: the peer opens it
// through /proc/<pid>/fd.

func init() {
	// open-peer reads pid, fd and size, maps that descriptor of the parent,
	// checks the parent's pattern and writes its own after it.
	helpers["open-peer"] = func(conn *net.UnixConn) error {
		var msg [24]byte
		if _, err := conn.Read(msg[:]); err != nil {
			return err
		}
		pid, fd := int(binary.LittleEndian.Uint64(msg[0:])), int(binary.LittleEndian.Uint64(msg[8:]))
		size := int64(binary.LittleEndian.Uint64(msg[16:]))
		s, err := OpenPeer(pid, fd, size)
		if err != nil {
			return err
		}
		b := s.Bytes()
		half := len(b) / 2
		for i := range half {
			if b[i] != byte(i*3+1) {
				return errors.New("the parent's pattern is not there")
			}
		}
		for i := half; i < len(b); i++ {
			b[i] = byte(i*5 + 2)
		}
		if err := s.Close(); err != nil {
			return err
		}
		_, err = conn.Write([]byte{1})
		return err
	}
}

func TestOpenPeer(t *testing.T) {
	const size = 1 << 20
	s := create(t, size, Options{})
	b := s.Bytes()
	for i := range size / 2 {
		b[i] = byte(i*3 + 1)
	}
	c := spawn(t, "open-peer")
	var msg [24]byte
	binary.LittleEndian.PutUint64(msg[0:], uint64(os.Getpid()))
	binary.LittleEndian.PutUint64(msg[8:], uint64(s.FD()))
	binary.LittleEndian.PutUint64(msg[16:], size)
	if _, err := c.conn.Write(msg[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.conn.Read(msg[:1]); err != nil {
		t.Fatalf("helper: %v\n%s", err, c.stderr.String())
	}
	for i := size / 2; i < size; i++ {
		if b[i] != byte(i*5+2) {
			t.Fatalf("byte %d = %d: the helper's write did not reach this mapping", i, b[i])
		}
	}
}

func TestOpenPeerErrors(t *testing.T) {
	s := create(t, 4096, Options{})
	if _, err := OpenPeer(os.Getpid(), s.FD(), 8192); !errors.Is(err, ErrInvalid) {
		t.Errorf("beyond the end: %v, want ErrInvalid", err)
	}
	if _, err := OpenPeer(os.Getpid(), 1<<20, 4096); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("closed descriptor: %v, want fs.ErrNotExist", err)
	}
	if _, err := OpenPeer(0, 3, 4096); !errors.Is(err, ErrInvalid) {
		t.Errorf("pid 0: %v, want ErrInvalid", err)
	}
	same, err := OpenPeer(os.Getpid(), s.FD(), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	s.Bytes()[100] = 42
	if same.Bytes()[100] != 42 {
		t.Error("the two mappings do not share memory")
	}
}
