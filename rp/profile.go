package rp

// fapiAlgs are the signing algorithms FAPI 2.0 Security Profile §5.4
// allows, for the OP's ID tokens and for the client's assertions.
var fapiAlgs = []string{"PS256", "ES256", "EdDSA"}
