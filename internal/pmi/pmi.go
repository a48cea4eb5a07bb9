// Package pmi is a client of the PMI wire protocols that other launchers
// serve their ranks on the descriptor in PMI_FD: PMI-2 (Slurm's srun
// --mpi=pmi2, preferred there) and PMI-1 (MPICH's Hydra mpiexec, and Slurm
// too). It speaks the bytes itself, without libpmi, and offers what a
// wire-up needs: rank and size, a key-value space with a fence, the
// process mapping (which ranks share a node), abort and finalize.
//
// Facts it relies on (measured, ../shared/slurm/NOTES.md): the first
// message is always a PMI-1 line "cmd=init pmi_version=V pmi_subversion=S"
// that selects the protocol; PMI-1 is newline-framed "key=value" pairs
// separated by spaces (a value cannot hold a space); PMI-2 is a 6-byte
// decimal length (padded on either side) and "key=value;" pairs (a value
// cannot hold ';'); responses' field order differs between servers; values
// over 1023 bytes are cut by Hydra and PMI-1 lines over 1024 bytes are
// split by Slurm, so Put splits long values across keys itself.
//
// A Client is used by one goroutine at a time: each call writes a request
// and reads its answer.
package pmi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
)

// ErrNotPMI is returned by Dial when the environment holds no PMI_FD.
var ErrNotPMI = errors.New("pmi: no PMI_FD in the environment")

// Version is a PMI protocol version.
type Version int

// The protocols.
const (
	PMI1 Version = 1
	PMI2 Version = 2
)

// Client is a connection to the launcher's PMI server.
type Client struct {
	rw      io.ReadWriteCloser
	r       *bufio.Reader
	version Version
	rank    int
	size    int
	kvs     string // PMI-1 kvsname, or the PMI-2 job id
}

// chunk is the most value bytes Put sends under one key: below Hydra's
// 1023 and Slurm's PMI-1 line of 1024 with the key and command around it.
const chunk = 800

// Dial connects to the PMI server of the process's environment (getenv
// is os.Getenv in a program). It prefers PMI-2 under Slurm (PMI_JOBID or
// SLURM_MPI_TYPE=pmi2 set) and PMI-1 elsewhere (Hydra, whose PMI-1 is what
// MPICH itself speaks). Errors: ErrNotPMI; a malformed variable; the
// server refusing or failing the handshake.
func Dial(getenv func(string) string) (*Client, error) {
	fdText := getenv("PMI_FD")
	if fdText == "" {
		return nil, ErrNotPMI
	}
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("pmi: PMI_FD=%q is not a descriptor", fdText)
	}
	f := os.NewFile(uintptr(fd), "pmi")
	var rw io.ReadWriteCloser = f // not a socket: the file itself
	if conn, err := net.FileConn(f); err == nil {
		f.Close() // conn holds a duplicate
		rw = conn
	}
	version := PMI1
	if getenv("PMI_JOBID") != "" || getenv("SLURM_MPI_TYPE") == "pmi2" {
		version = PMI2
	}
	c, err := NewClient(rw, version, getenv)
	if err != nil {
		rw.Close()
		return nil, err
	}
	return c, nil
}

// NewClient runs the handshake of version on rw, a connection to a PMI
// server; getenv supplies PMI_RANK, PMI_SIZE and PMI_JOBID.
func NewClient(rw io.ReadWriteCloser, version Version, getenv func(string) string) (*Client, error) {
	c := &Client{rw: rw, r: bufio.NewReader(rw), version: version}
	if err := c.init(getenv); err != nil {
		return nil, fmt.Errorf("pmi: PMI-%d handshake: %w", version, err)
	}
	return c, nil
}

func atoiEnv(getenv func(string) string, key string) (int, error) {
	v := getenv(key)
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q is not a number", key, v)
	}
	return n, nil
}

func (c *Client) init(getenv func(string) string) error {
	sub := 1
	if c.version == PMI2 {
		sub = 0
	}
	// Both protocols start with this PMI-1 line.
	if _, err := fmt.Fprintf(c.rw, "cmd=init pmi_version=%d pmi_subversion=%d\n", c.version, sub); err != nil {
		return err
	}
	m, err := c.readLine1()
	if err != nil {
		return err
	}
	if err := check(m, "response_to_init"); err != nil {
		return err
	}
	if c.version == PMI1 {
		if c.rank, err = atoiEnv(getenv, "PMI_RANK"); err != nil {
			return err
		}
		if c.size, err = atoiEnv(getenv, "PMI_SIZE"); err != nil {
			return err
		}
		m, err := c.call1("get_my_kvsname", nil, "my_kvsname")
		if err != nil {
			return err
		}
		c.kvs = m["kvsname"]
		return nil
	}
	rank, err := atoiEnv(getenv, "PMI_RANK")
	if err != nil {
		return err
	}
	args := [][2]string{{"pmirank", strconv.Itoa(rank)}, {"threaded", "FALSE"}}
	if id := getenv("PMI_JOBID"); id != "" {
		args = append([][2]string{{"pmijobid", id}}, args...)
	}
	m, err = c.call2("fullinit", args, "fullinit-response")
	if err != nil {
		return err
	}
	if c.rank, err = strconv.Atoi(m["rank"]); err != nil {
		return fmt.Errorf("fullinit gave rank %q", m["rank"])
	}
	if c.size, err = strconv.Atoi(m["size"]); err != nil {
		return fmt.Errorf("fullinit gave size %q", m["size"])
	}
	m, err = c.call2("job-getid", nil, "job-getid-response")
	if err != nil {
		return err
	}
	c.kvs = m["jobid"]
	return nil
}

// Rank and Size are the process's rank and the job's size.
func (c *Client) Rank() int { return c.rank }
func (c *Client) Size() int { return c.size }

// Version is the protocol spoken.
func (c *Client) Version() Version { return c.version }

// JobID is the launcher's name of the job's key-value space.
func (c *Client) JobID() string { return c.kvs }

// check returns the error an answer reports, or one if it is not of the
// command want.
func check(m map[string]string, want string) error {
	if m["cmd"] != want {
		return fmt.Errorf("the server answered %q, want %q", m["cmd"], want)
	}
	if rc := m["rc"]; rc != "" && rc != "0" {
		msg := m["msg"]
		if msg == "" {
			msg = m["errmsg"]
		}
		return fmt.Errorf("%s failed: rc=%s %s", want, rc, msg)
	}
	return nil
}
