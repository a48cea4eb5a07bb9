package auth

import (
	"errors"
	"net"
	"testing"
)

func run(t *testing.T, dsec, asec []byte, dpurpose, apurpose string, want uint32) (dialErr, accErr error, peer uint32) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		peer, accErr = Accept(b, asec, apurpose, 7)
		if accErr != nil {
			b.Close()
		}
	}()
	dialErr = Dial(a, dsec, dpurpose, 3, want)
	if dialErr != nil {
		a.Close()
	}
	<-done
	return
}

func TestAuth(t *testing.T) {
	s := []byte("job-secret")
	if d, a, p := run(t, s, s, "tcp", "tcp", 7); d != nil || a != nil || p != 3 {
		t.Fatalf("good handshake: dial %v, accept %v, peer %d", d, a, p)
	}
	if d, a, _ := run(t, s, s, "tcp", "tcp", Any); d != nil || a != nil {
		t.Fatalf("handshake to Any: dial %v, accept %v", d, a)
	}
	if _, a, _ := run(t, []byte("other"), s, "tcp", "tcp", 7); !errors.Is(a, ErrDenied) {
		t.Fatalf("wrong secret accepted: %v", a)
	}
	if _, a, _ := run(t, s, s, "coord", "tcp", 7); !errors.Is(a, ErrDenied) {
		t.Fatalf("wrong purpose accepted: %v", a)
	}
	if _, a, _ := run(t, s, s, "tcp", "tcp", 9); !errors.Is(a, ErrDenied) {
		t.Fatalf("wrong target accepted: %v", a)
	}
	if d, _, _ := run(t, s, []byte("other"), "tcp", "tcp", 7); d == nil {
		t.Fatal("dialer accepted an acceptor with another secret")
	}
}
