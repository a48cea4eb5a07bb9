package tcp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/auth"
	"github.com/gorun-hpc/gorun/internal/transport"
	"github.com/gorun-hpc/gorun/internal/wire"
)

// rawPeer plays rank 1 by hand against a real rank 0: it passes the
// handshake, then writes whatever the test wants.
func rawPeer(t *testing.T, h transport.Handler) (ep transport.Endpoint, conn net.Conn) {
	t.Helper()
	t0 := listenWorld(t, 1, nil)[0]
	var eps []transport.Endpoint
	var err error
	connected := goDone(func() {
		eps, err = t0.Connect(context.Background(), []string{t0.Addr(), "rank 1"}, h)
	})
	conn, derr := net.Dial("tcp", t0.Addr())
	if derr != nil {
		t.Fatal(derr)
	}
	t.Cleanup(func() { conn.Close() })
	if derr := auth.Dial(conn, testSecret, "tcp", 1, 0); derr != nil {
		t.Fatal(derr)
	}
	if derr := transport.DialAnswer(conn, ErrPeerClosed); derr != nil {
		t.Fatal(derr)
	}
	if derr := transport.Commit(conn); derr != nil {
		t.Fatal(derr)
	}
	waitFor(t, connected, "Connect")
	if err != nil {
		t.Fatal(err)
	}
	return eps[1], conn
}

func frame(h wire.Header, payload string) []byte {
	h.Len = uint32(len(payload))
	b := make([]byte, wire.HeaderSize, wire.HeaderSize+len(payload))
	h.Encode(b)
	return append(b, payload...)
}

// TestProtocolViolations: what a peer writes decides between an orderly
// end and PeerLost; a bad header breaks the connection with an error
// wrapping wire.ErrHeader.
func TestProtocolViolations(t *testing.T) {
	eager := frame(wire.Header{Kind: wire.KindEager, Tag: 1}, "hello")
	bye := frame(wire.Header{Kind: wire.KindBye}, "")
	badVersion := append([]byte(nil), eager...)
	badVersion[0] = 9
	for _, tc := range []struct {
		name   string
		stream []byte
		want   error // nil: orderly, no PeerLost
	}{
		{"bye then EOF", concat(eager, bye), nil},
		{"EOF without bye", eager, transport.ErrPeerLost},
		{"EOF mid-header", concat(eager, bye[:20]), transport.ErrPeerLost},
		{"EOF mid-payload", eager[:wire.HeaderSize+2], transport.ErrPeerLost},
		{"bad header", concat(eager, badVersion), wire.ErrHeader},
		{"bye with payload", frame(wire.Header{Kind: wire.KindBye}, "x"), transport.ErrPeerLost},
		{"frame after bye", concat(bye, eager), transport.ErrPeerLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			ep, conn := rawPeer(t, rec)
			conn.Write(tc.stream)
			conn.(*net.TCPConn).CloseWrite()
			if tc.want == nil {
				// Rank 0 answers the goodbye with its own, then EOF.
				got, err := readAll(conn)
				if err != nil || !bytes.Equal(got, bye) {
					t.Errorf("after our goodbye rank 0 sent %x, %v; want its goodbye", got, err)
				}
				waitFor(t, goDone(func() { ep.Close() }), "Close")
				if errs := rec.lostErrs(); len(errs) > 0 {
					t.Errorf("PeerLost after an orderly goodbye: %v", errs)
				}
				return
			}
			waitFor(t, rec.lostc, "PeerLost")
			errs := rec.lostErrs()
			if len(errs) != 1 || !errors.Is(errs[0], tc.want) || !errors.Is(errs[0], transport.ErrPeerLost) {
				t.Errorf("PeerLost %v, want one error wrapping %v and transport.ErrPeerLost", errs, tc.want)
			}
			if !strings.Contains(errs[0].Error(), "rank 0 <- rank 1") {
				t.Errorf("PeerLost error %q does not name the ranks", errs[0])
			}
			if err := ep.Send(wire.Header{Kind: wire.KindEager}, nil); !errors.Is(err, transport.ErrPeerLost) {
				t.Errorf("Send after PeerLost = %v", err)
			}
			waitFor(t, goDone(func() { ep.Close() }), "Close")
		})
	}
}

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func readAll(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(testTimeout))
	var out []byte
	b := make([]byte, 4096)
	for {
		n, err := c.Read(b)
		out = append(out, b[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
	}
}
