// Package launch starts the N local rank processes of a gorun job and
// supervises them: it runs the job's coordinator, gives every rank the
// bootstrap environment, forwards their output line by line, forwards
// signals, enforces a timeout, and stops the whole job at the first failure.
//
// # Usage
//
//	res, err := (&launch.Job{Path: "./app", NP: 4}).Run(ctx)
//	if err != nil { ... }        // the job could not be started
//	os.Exit(res.ExitCode())
//
// # Process model
//
// Every rank is the leader of its own process group, so a terminal's Ctrl-C
// reaches gorun alone and gorun decides what the ranks get. Signals from
// gorun go to the rank's whole group, and when a rank exits whatever it
// left running in its group is killed. Each rank is started from an OS
// thread that stays locked for the rank's life, with Pdeathsig = SIGKILL:
// if gorun itself is killed, the kernel kills the ranks (golang/go#27505
// explains why the thread must stay). The ranks' runtime also exits when
// its coordinator connection drops, but launch does not rely on it.
//
// Run leaves nothing behind: no child process, goroutine, or listening
// socket survives its return, except a goroutine still blocked reading a
// Job.Stdin that never returns (see Job.Stdin).
package launch
