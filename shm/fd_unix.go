//go:build unix

package shm

import (
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// SendFD sends a copy of descriptor fd and the bytes of meta over conn, in
// one message (SCM_RIGHTS). meta must not be empty: a stream socket carries
// a descriptor only along with data. Use it to tell the receiver what the
// descriptor is, for instance the segment size. fd stays open in the sender.
//
// SendFD honours conn's deadlines. Errors from conn come back unchanged.
func SendFD(conn *net.UnixConn, fd int, meta []byte) error {
	if conn == nil || fd < 0 || len(meta) == 0 {
		return invalidf("SendFD needs a connection, a descriptor and at least one byte of meta (fd %d, %d bytes)", fd, len(meta))
	}
	n, _, err := conn.WriteMsgUnix(meta, unix.UnixRights(fd), nil)
	if err == nil && n < len(meta) {
		// The descriptor went with the first byte; the rest is plain data.
		_, err = conn.Write(meta[n:])
	}
	return err
}

// RecvFD receives a descriptor and its meta bytes sent by [SendFD]. On a
// stream socket it reads exactly len(meta) bytes, so both sides must agree
// on the length; on a seqpacket or datagram socket it reads one message and
// n may be less. The descriptor is close-on-exec and the caller owns it
// (hand it to [FromFD]).
//
// A message without exactly one descriptor is an error, and any descriptors
// it carried are closed. At the end of the stream RecvFD returns [io.EOF].
func RecvFD(conn *net.UnixConn, meta []byte) (fd int, n int, err error) {
	if conn == nil || len(meta) == 0 {
		return -1, 0, invalidf("RecvFD needs a connection and a meta buffer of at least one byte")
	}
	// Room for a few descriptors, so that a peer sending too many is
	// detected instead of truncated.
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(meta, oob)
	fds, perr := parseRights(oob[:oobn])
	switch {
	case err != nil:
	case perr != nil:
		err = perr
	case flags&unix.MSG_CTRUNC != 0:
		err = errorf(nil, "RecvFD: control message truncated")
	case len(fds) == 0 && n == 0:
		err = io.EOF
	case len(fds) != 1:
		err = errorf(nil, "RecvFD: got %d descriptors, want 1", len(fds))
	case n < len(meta) && isStream(conn):
		var m int
		m, err = io.ReadFull(conn, meta[n:])
		n += m
	}
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, n, err
	}
	return fds[0], n, nil
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		rights, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue // not SCM_RIGHTS
		}
		fds = append(fds, rights...)
	}
	return fds, nil
}

func isStream(conn *net.UnixConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	typ := -1
	rc.Control(func(fd uintptr) {
		typ, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	})
	return typ == unix.SOCK_STREAM
}
