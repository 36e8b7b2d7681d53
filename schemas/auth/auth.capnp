@0xe5e6f60f86b493fb;
# Auth: the KeyPackage directory.

using Go = import "/go.capnp";
$Go.package("auth");
$Go.import("github.com/quicproquo/quicproquo/schemas/auth");

interface AuthService {
  # The directory of MLS KeyPackages, addressed by 32-byte Ed25519 identity
  # keys. Only the connection authenticated as identityKey may upload for it
  # or count its packages; any authenticated connection may fetch.

  uploadKeyPackage @0 (identityKey :Data, package :Data, lastResort :Bool = false)
      -> (fingerprint :Data);
  # Stores an RFC 9420 KeyPackage whose BasicCredential identity must be
  # identityKey. fingerprint is the SHA-256 of package. A lastResort package
  # replaces the previous one and is handed out but never consumed.
  # Packages are kept per cipher suite (the package's own cipher_suite),
  # for the suites the node lists; another suite fails with invalidArgument.

  fetchKeyPackage @1 (identityKey :Data, cipherSuite :UInt16 = 1, peek :Bool = false) -> (package :Data, peeked :Bool);
  # Returns one package of identityKey in cipherSuite and consumes it:
  # concurrent fetchers never get the same one. When no consumable package
  # is left, the last-resort package is returned (and kept); when there is
  # none either, the call fails with noKeyPackage. With peek, it returns
  # the last-resort package and consumes nothing (noKeyPackage when there
  # is none): a look at the identity's package, not an invitation; peeked
  # says so (a node from before peek leaves it false, having consumed one).

  keyPackageCount @2 (identityKey :Data, cipherSuite :UInt16 = 1) -> (remaining :UInt32, lastResort :Bool);
  # How many consumable packages identityKey has left in cipherSuite, and
  # whether a last-resort package is present. Only identityKey's own
  # connection may ask.
}
