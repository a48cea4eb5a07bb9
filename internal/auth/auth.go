// Package auth proves that both ends of a new connection belong to the same
// job, with a challenge-response over the job's secret.
//
// The secret never crosses the wire. The acceptor sends a random nonce; the
// dialer answers with its own nonce, its identity, the identity it meant to
// reach and an HMAC-SHA256 over all of them; the acceptor checks it and
// proves itself with an HMAC over both nonces in the other order. Each side
// binds the purpose string (for example "tcp" or "coord"), so an answer made
// for one service cannot be replayed to another.
//
// A caller sets a deadline on the connection before calling; a stranger that
// stalls is cut off by it.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrDenied is wrapped by every failure caused by the peer not proving
// membership in the job.
var ErrDenied = errors.New("auth: peer did not prove it belongs to the job")

// Any is the identity Dial passes as peer when it does not care who answers.
const Any = ^uint32(0)

const (
	magic    = "GORUNAU1"
	nonceLen = 32
	macLen   = sha256.Size
)

// Accept runs the acceptor's side on rw. self is the acceptor's identity; it
// returns the identity the dialer proved.
func Accept(rw io.ReadWriter, secret []byte, purpose string, self uint32) (peer uint32, err error) {
	if len(secret) == 0 {
		return 0, errors.New("auth: empty job secret")
	}
	var ns [nonceLen]byte
	if _, err := rand.Read(ns[:]); err != nil {
		return 0, err
	}
	hello := append([]byte(magic), ns[:]...)
	if _, err := rw.Write(hello); err != nil {
		return 0, fmt.Errorf("auth: sending challenge: %w", err)
	}
	var ans [nonceLen + 8 + macLen]byte
	if _, err := io.ReadFull(rw, ans[:]); err != nil {
		return 0, fmt.Errorf("%w: reading answer: %v", ErrDenied, err)
	}
	nc := ans[:nonceLen]
	peer = binary.LittleEndian.Uint32(ans[nonceLen:])
	target := binary.LittleEndian.Uint32(ans[nonceLen+4:])
	want := mac(secret, "dial", purpose, ns[:], nc, peer, target)
	if !hmac.Equal(want, ans[nonceLen+8:]) {
		return 0, fmt.Errorf("%w: wrong proof", ErrDenied)
	}
	if target != self && target != Any {
		return 0, fmt.Errorf("%w: dialer wanted %d, this is %d", ErrDenied, target, self)
	}
	proof := binary.LittleEndian.AppendUint32(nil, self)
	proof = append(proof, mac(secret, "accept", purpose, nc, ns[:], self, peer)...)
	if _, err := rw.Write(proof); err != nil {
		return 0, fmt.Errorf("auth: sending proof: %w", err)
	}
	return peer, nil
}

// Dial runs the dialer's side on rw. self is the dialer's identity and peer
// the identity it expects to reach (or Any).
func Dial(rw io.ReadWriter, secret []byte, purpose string, self, peer uint32) error {
	if len(secret) == 0 {
		return errors.New("auth: empty job secret")
	}
	var hello [len(magic) + nonceLen]byte
	if _, err := io.ReadFull(rw, hello[:]); err != nil {
		return fmt.Errorf("%w: reading challenge: %v", ErrDenied, err)
	}
	if string(hello[:len(magic)]) != magic {
		return fmt.Errorf("%w: not a gorun endpoint", ErrDenied)
	}
	ns := hello[len(magic):]
	var nc [nonceLen]byte
	if _, err := rand.Read(nc[:]); err != nil {
		return err
	}
	ans := make([]byte, 0, nonceLen+8+macLen)
	ans = append(ans, nc[:]...)
	ans = binary.LittleEndian.AppendUint32(ans, self)
	ans = binary.LittleEndian.AppendUint32(ans, peer)
	ans = append(ans, mac(secret, "dial", purpose, ns, nc[:], self, peer)...)
	if _, err := rw.Write(ans); err != nil {
		return fmt.Errorf("auth: sending answer: %w", err)
	}
	var proof [4 + macLen]byte
	if _, err := io.ReadFull(rw, proof[:]); err != nil {
		return fmt.Errorf("%w: reading proof: %v", ErrDenied, err)
	}
	got := binary.LittleEndian.Uint32(proof[:])
	if peer != Any && got != peer {
		return fmt.Errorf("%w: reached %d, wanted %d", ErrDenied, got, peer)
	}
	if !hmac.Equal(mac(secret, "accept", purpose, nc[:], ns, got, self), proof[4:]) {
		return fmt.Errorf("%w: wrong proof from acceptor", ErrDenied)
	}
	return nil
}

func mac(secret []byte, role, purpose string, a, b []byte, x, y uint32) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(role))
	m.Write([]byte{0})
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(a)
	m.Write(b)
	var ids [8]byte
	binary.LittleEndian.PutUint32(ids[:], x)
	binary.LittleEndian.PutUint32(ids[4:], y)
	m.Write(ids[:])
	return m.Sum(nil)
}
