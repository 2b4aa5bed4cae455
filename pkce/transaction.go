package pkce

import "time"

// Transaction is one login in flight: created at the login redirect,
// consumed once at the callback. Its JSON form is compact (one-letter
// keys), for a cookie.
type Transaction struct {
	// State binds the callback to this browser and this login
	// (128 random bits or more).
	State string `json:"s"`
	// Nonce binds the ID token to this login.
	Nonce string `json:"n"`
	// Verifier is the PKCE code verifier.
	Verifier string `json:"v"`
	// ReturnTo is the same-origin path to go back to after login.
	ReturnTo string `json:"r,omitempty"`
	// Issuer is the OP the login was started at.
	Issuer string `json:"i"`
	// Prompt is the prompt value sent, e.g. "none" for a silent SSO check.
	Prompt string `json:"p,omitempty"`
	// MaxAge is the max_age sent, in seconds (rp's AuthCodeURL records it):
	// the ID token must then say, in auth_time, that the user authenticated
	// no longer ago than that. Nil: none was sent.
	MaxAge *int64 `json:"m,omitempty"`
	// ACRValues are the acr_values sent (rp's AuthCodeURL records them):
	// the ID token's acr must then be one of them (step-up authentication,
	// RFC 9470). Nil: none were sent.
	ACRValues []string `json:"a,omitempty"`
	// Created is when the login started.
	Created time.Time `json:"t"`
}

// NewTransaction starts a login at issuer that returns to returnTo: a
// 256-bit state, a 256-bit nonce and a fresh verifier.
func NewTransaction(issuer, returnTo string) *Transaction {
	return &Transaction{
		State:    random(32),
		Nonce:    random(32),
		Verifier: NewVerifier(),
		ReturnTo: returnTo,
		Issuer:   issuer,
		Created:  time.Now(),
	}
}

// Challenge returns the S256 code challenge for the transaction's verifier.
func (t *Transaction) Challenge() string { return Challenge(t.Verifier) }
