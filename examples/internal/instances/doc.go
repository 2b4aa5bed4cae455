// Package instances tests the example web app (examples/webapp/cmd/webapp)
// run the way it runs in production behind a load balancer: three
// processes of it, configured by their environment alone, sharing one
// Redis (with its append-only file on), signing users in at a real OP (the
// development OP, which enforces the client authentication it registered,
// rotates refresh tokens and revokes the whole chain when a used one comes
// back).
package instances
