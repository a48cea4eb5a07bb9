// Package bootstrap is the contract between gorun and the ranks it starts.
//
// It is the one place where the GORUN_* environment variables are defined,
// written ([Env.Environ]) and parsed ([Lookup]), so the launcher and the
// runtime cannot drift apart. It also holds the job's coordinator: a small
// TCP server run by the launcher ([Coordinator]) and its client used by each
// rank's runtime ([Dial], [Client]).
//
// # Usage
//
// The launcher side:
//
//	coord, err := bootstrap.NewCoordinator(bootstrap.CoordConfig{Size: n, Secret: secret})
//	env := bootstrap.Env{JobID: id, Rank: r, Size: n, ..., Coord: coord.Addr(), Secret: secret}
//	cmd.Env = append(os.Environ(), env.Environ()...)
//	for ev := range coord.Events() { ... }
//
// The rank side:
//
//	env, err := bootstrap.Lookup(os.Getenv) // nil, nil: not started by gorun
//	cl, err := bootstrap.Dial(ctx, env)
//	all, err := cl.Exchange(ctx, myAddress)   // allgather + fence
//	defer cl.Close()
//
// # The coordinator
//
// The coordinator is a rendezvous point and a failure detector, not a data
// path: each rank keeps one authenticated connection to it for the life of
// the job. Exchange is an allgather through it (ranks publish their listen
// addresses with it); Abort carries a rank's reason for killing the job to
// the launcher; a connection that drops without Close tells the launcher and
// the other ranks that the rank is lost. The wire protocol is described in
// docs/launch.md.
//
// # Concurrency
//
// A Coordinator is safe for concurrent use. A Client's methods may be called
// from several goroutines, but Exchange calls are serialized: it is a
// collective operation, and every rank must call it the same number of times
// in the same order.
//
// Out of scope: talking to foreign launchers (PMI, PMIx, Slurm); [Foreign]
// only detects them, so the runtime can refuse to start as a silent
// singleton.
package bootstrap
