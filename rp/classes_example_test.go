package rp_test

import (
	"fmt"
	"time"

	"github.com/multiapp-go/multiapp/rp"
)

// Every error has one class, and the class says what to do.
func ExampleClassOf() {
	for _, err := range []error{
		&rp.OPError{Endpoint: "token", Grant: "refresh_token", Code: "invalid_grant"},
		&rp.TemporaryError{Status: 429, RetryAfter: 30 * time.Second},
		&rp.OPError{Endpoint: "token", Grant: "refresh_token", Code: "invalid_client"},
		&rp.ValidationError{What: "id_token", Code: rp.CodeNonce},
	} {
		switch rp.ClassOf(err) {
		case rp.ClassRevoked:
			fmt.Println("revoked: the shared session is over, clear the local session")
		case rp.ClassTemporary:
			fmt.Println("temporary: keep everything, answer 503 with Retry-After, retry later")
		case rp.ClassMisconfigured:
			fmt.Println("misconfigured: keep the session, tell the developer what to fix")
		case rp.ClassInvalid:
			fmt.Println("invalid: refuse the input")
		}
	}
	// Output:
	// revoked: the shared session is over, clear the local session
	// temporary: keep everything, answer 503 with Retry-After, retry later
	// misconfigured: keep the session, tell the developer what to fix
	// invalid: refuse the input
}
