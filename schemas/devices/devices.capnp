@0xad9370e892877143;
# Devices: a user's signed device list, per-device KeyPackages, and the
# rendezvous through which a new device is linked.

using Go = import "/go.capnp";
$Go.package("devices");
$Go.import("github.com/quicproquo/quicproquo/schemas/devices");

interface DeviceService {
  # A user identity key U certifies device keys D (internal/devid); each
  # device connects with its own key, has its own queue and KeyPackages.
  # The user publishes the list of its current devices, signed by U. A
  # device that leaves the list is revoked for ever: its queue and
  # KeyPackages are dropped and every later call on a connection with its
  # key fails with revoked. A device in the current list of a registered
  # user counts as registered.

  publishDevices @0 (list :Data) -> (version :UInt64);
  # Stores the signed list (internal/devid DeviceList) of the user U whose
  # key signed it; U's signature is the authority, so any authenticated
  # connection may carry it, for a registered U. The version must be
  # above the stored one. A device the list adds must be U or a key that
  # is nobody's yet (not registered on its own, in no other user's list,
  # never revoked). Returns the stored version.

  fetchDevices @1 (userKey :Data) -> (list :Data);
  # The user's current signed list; empty if it never published one (its
  # implicit list is the one device U).

  fetchUserKeyPackages @2 (userKey :Data, cipherSuite :UInt16 = 1, peek :Bool = false)
      -> (packages :List(DevicePackage), list :Data);
  # One KeyPackage per device of the user's current list (the implicit
  # list {U} without one), consumed like fetchKeyPackage; a device with
  # none left is omitted. list is the signed list (empty without one), for
  # the caller to check the packages against.

  linkOpen @3 (slot :Data) -> ();
  # Opens a link slot (32 bytes) for 10 minutes; the caller (registered)
  # is its opener. At most 4 open slots per identity.

  linkPut @4 (slot :Data, box :UInt8, payload :Data) -> ();
  # Box 0 (request, new device to opener): any authenticated connection,
  # once per slot. Box 1 (response, opener to new device): the opener
  # only, once. Payloads are at most 64 KiB.

  linkGet @5 (slot :Data, box :UInt8) -> (payload :Data);
  # A box's payload, empty if not yet put. Box 0: the opener only.

  linkClose @6 (slot :Data) -> ();
  # Removes the slot (opener only); expiry does the same.
}

struct DevicePackage {
  deviceKey @0 :Data;
  package @1 :Data;
  peeked @2 :Bool;   # not consumed (peek, or the device's last-resort package)
}
