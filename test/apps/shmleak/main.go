// Command shmleak creates a named shared-memory segment tagged with its
// job, prints "created NAME", and then ends the way -mode says, to test that
// gorun removes what a job leaves under /dev/shm:
//
//	exit   exit 0 without removing it
//	kill   SIGKILL itself
//	panic  panic
//	hold   sleep until killed (for killing gorun itself)
//	clean  close the segment (which removes its name) and exit 0
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/gorun-hpc/gorun/internal/bootstrap"
	"github.com/gorun-hpc/gorun/shm"
)

func main() {
	mode := flag.String("mode", "exit", "exit, kill, panic, hold or clean")
	flag.Parse()
	name := bootstrap.ShmPrefix(os.Getenv(bootstrap.EnvJobID)) + "r" + os.Getenv(bootstrap.EnvRank)
	seg, err := shm.Create(1<<20, shm.Options{Name: name})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("created", seg.Name())
	switch *mode {
	case "exit":
		os.Exit(0)
	case "kill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "panic":
		panic("shmleak: deliberate panic")
	case "hold":
		time.Sleep(time.Hour)
	case "clean":
		seg.Close()
	}
}
