// Package doctortest runs the `multiapp doctor` command against the
// development OP (examples/devop), with correctly and wrongly configured
// apps, and asserts its verdicts.
//
// The doctor is internal to the root module and the dev OP lives in this
// module (zitadel/oidc, Go 1.26), so the test builds the real command and
// runs it, with --json, against an in-process dev OP: what it checks is
// what a user runs.
package doctortest
