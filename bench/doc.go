// Package bench compares multiapp's access-token verification with the
// crypto floor and with other Go libraries, in one `go test -bench` run:
//
//	cd bench && go test -run '^$' -bench . -benchtime 2s -count 5
//
// It is its own module so that the library never requires the peers it is
// measured against (golang-jwt/v5 is only needed here). See BENCHMARKS.md at
// the repository root for the results and how to read them.
package bench
