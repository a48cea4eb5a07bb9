// Command sleep is a test rank that prints "ready pid=P rank=R" and sleeps
// forever. With -trap it reports SIGTERM, SIGHUP and SIGUSR1 on stdout and
// exits 0 on SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	trap := flag.Bool("trap", false, "report signals; exit 0 on SIGTERM")
	flag.Parse()
	rank := os.Getenv("GORUN_RANK")
	ch := make(chan os.Signal, 4)
	if *trap {
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
	}
	fmt.Printf("ready pid=%d rank=%s\n", os.Getpid(), rank)
	for {
		select {
		case sig := <-ch:
			fmt.Printf("rank %s got %v\n", rank, sig)
			if sig == syscall.SIGTERM {
				os.Exit(0)
			}
		case <-time.After(time.Hour):
		}
	}
}
