// Command rwlock is mpilock's README example in Go: one rank makes a
// shared resource (a file) while the others wait, every rank reads it under
// a read lock and appends to it under the write lock, and one rank
// finishes it.
//
//	go run ./cmd/gorun -np 4 ./examples/rwlock [-o hello.txt]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/gorun-hpc/gorun/patterns"
	"github.com/gorun-hpc/gorun/runtime"
)

func main() {
	out := flag.String("o", "", "the shared file (default: a new one in the temporary directory)")
	flag.Parse()

	comm, err := runtime.Init(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer comm.Close()

	// A controller on the whole job, with its state on rank 0.
	ctrl, err := patterns.NewWindowController(comm, patterns.ControllerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer ctrl.Close()

	// One rank makes the resource; everyone gets its name.
	path, err := patterns.SingleWrite(ctrl, 0, func() (string, error) {
		name := *out
		if name == "" {
			f, err := os.CreateTemp("", "rwlock-*.txt")
			if err != nil {
				return "", err
			}
			name = f.Name()
			f.Close()
		}
		return name, os.WriteFile(name, []byte("header\n"), 0o644)
	})
	if err != nil {
		log.Fatal(err)
	}

	// Many ranks read at once; no one writes meanwhile.
	var lines int
	if err := ctrl.Read(func() error {
		b, err := os.ReadFile(path)
		lines = strings.Count(string(b), "\n")
		return err
	}); err != nil {
		log.Fatal(err)
	}
	// One rank writes at a time.
	if err := ctrl.Write(func() error {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(f, "rank %d saw %d line(s) when it read\n", comm.Rank(), lines)
		return f.Close()
	}); err != nil {
		log.Fatal(err)
	}

	// The last rank reports, after every write (SingleWrite waits for the
	// others to reach it, and they have all written by then).
	n, err := patterns.SingleWrite(ctrl, comm.Size()-1, func() (int, error) {
		b, err := os.ReadFile(path)
		fmt.Printf("%s", b)
		return strings.Count(string(b), "\n"), err
	})
	if err != nil {
		log.Fatal(err)
	}
	if comm.Rank() == 0 {
		fmt.Printf("%d lines in %s, %d ranks\n", n, path, comm.Size())
		if *out == "" {
			os.Remove(path)
		}
	}
}
