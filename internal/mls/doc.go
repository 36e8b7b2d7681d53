// Package mls implements the Messaging Layer Security protocol, RFC 9420.
//
// The files follow the RFC's sections: codec.go is the presentation language
// (§2.1), ciphersuite.go and crypto.go the cipher suites and labeled
// functions (§5), treemath.go the array-based tree (Appendix C), and so on.
// Conformance is shown by the official IETF test vectors in testdata/.
package mls
