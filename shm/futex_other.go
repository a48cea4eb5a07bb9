//go:build !linux

package shm

import "time"

// Wait is not supported on this platform.
func Wait(addr *uint32, val uint32, timeout time.Duration) error { return notSupported() }

// Wake is not supported on this platform.
func Wake(addr *uint32, n int) (int, error) { return 0, notSupported() }
