//go:build !linux

package middleware_test

import "time"

// threadCPU: see the Linux version; elsewhere the benchmarks report wall
// time only.
func threadCPU() time.Duration { return 0 }
