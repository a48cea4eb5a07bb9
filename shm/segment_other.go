//go:build !linux

package shm

import "runtime"

func notSupported() error {
	return errorf([]error{ErrNotSupported}, "shared memory segments need Linux, not %s", runtime.GOOS)
}

// Create is not supported on this platform.
func Create(size int64, opt Options) (*Segment, error) { return nil, notSupported() }

// Open is not supported on this platform.
func Open(name string, opt Options) (*Segment, error) { return nil, notSupported() }

// FromFD is not supported on this platform.
func FromFD(fd int, size int64) (*Segment, error) { return nil, notSupported() }

// OpenPeer is not supported on this system.
func OpenPeer(pid, fd int, size int64) (*Segment, error) { return nil, notSupported() }

// ReadOnly is not supported on this platform.
func (s *Segment) ReadOnly() ([]byte, error) { return nil, notSupported() }

// FileID is not supported on this platform.
func (s *Segment) FileID() (dev, ino uint64, err error) { return 0, 0, notSupported() }

// Close does nothing: no Segment can exist on this platform.
func (s *Segment) Close() error { return nil }

// CloseFD does nothing: no Segment can exist on this platform.
func (s *Segment) CloseFD() error { return nil }

// Unlink does nothing: no Segment can exist on this platform.
func (s *Segment) Unlink() error { return nil }
