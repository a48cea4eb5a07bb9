//go:build !unix

package shm

import "net"

// SendFD is not supported on this platform.
func SendFD(conn *net.UnixConn, fd int, meta []byte) error { return notSupported() }

// RecvFD is not supported on this platform.
func RecvFD(conn *net.UnixConn, meta []byte) (fd int, n int, err error) {
	return -1, 0, notSupported()
}
