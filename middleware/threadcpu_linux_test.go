package middleware_test

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time the calling OS thread has used (the caller
// locks its goroutine to the thread). On a machine shared with other
// work, a benchmark's wall time per operation grows with the queue for
// the CPU; the CPU time the thread spent on the operations does not, so
// benchmarks report it next to ns/op (cpu-ns/op).
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if syscall.Getrusage(rusageThread, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
