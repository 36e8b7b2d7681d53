// Package store is qpd's durable state: one SQLite file in the daemon's state
// folder, holding everything secret and everything a user would miss after a
// restart.
//
// The file lives in a folder of mode 0700 and has mode 0600. Its schema is
// versioned (PRAGMA user_version) and migrated forward on Open; a file from a
// newer daemon is refused rather than guessed at.
//
// All access goes through transactions:
//
//	err := st.Update(ctx, func(tx *store.Tx) error {
//		m, err := tx.AppendMessage(msg)
//		if err != nil {
//			return err
//		}
//		_, err = tx.AppendEvent(store.Event{Kind: store.EventMessage, GroupID: m.GroupID, MessageSeq: m.Seq})
//		if err != nil {
//			return err
//		}
//		return tx.SetNodeCursor(envelopeSeq)
//	})
//
// so that applying a received message, recording it and advancing the node
// cursor either all happen or none do. Update transactions take SQLite's
// write lock when they begin (BEGIN IMMEDIATE).
//
// Tables:
//   - identity: the one Ed25519 identity (private seed and public key).
//   - key_packages: KeyPackages with their private halves, stored before they
//     are uploaded, deleted when used.
//   - groups: MLS group id, name, epoch, the disappearing-messages timer,
//     the secret trees moved since the state was written and the tag of
//     that write (group_ratchets.go).
//   - group_states: each group's serialized MLS state (group_states.go).
//   - messages: history with a per-group sequence number and a read flag;
//     what each is (kind, the message it refers to, edited, deleted, when
//     it expires; content.go).
//   - receipts: each member's delivered or read state of a message.
//   - events: the log behind Subscribe, with a global sequence number.
//   - outbox: messages and commits waiting for the node (a commit with the
//     intent it was built from, so that it can be built again; state
//     "rerun" while a stale commit's intent waits to run again).
//   - welcomes: Welcome messages not yet processed; those of non-contacts
//     are requests waiting for the user's consent.
//   - contacts: contacts (name, verified mark) and blocked identities.
//   - recoveries: groups being moved to a successor without a member whose
//     commit could not be applied (the expected leader and roster); while
//     one is open, the group's outgoing messages wait in the outbox.
//   - node_state: the node queue cursor.
//   - pinned_certs: the node certificate pinned per node address.
//
// # Secrets at rest
//
// Deleted secrets are overwritten in the file (secure_delete) and the
// write-ahead log is truncated after every transaction that deleted one
// (scrub.go), so that a used KeyPackage's private half or a past epoch's
// keys cannot be read back from the state folder.
//
// At-rest encryption (designed, not built): the file would be encrypted
// page by page (an SQLite VFS with AES-GCM per page, the page number and a
// per-write counter as nonce, the tag in the page's reserved bytes), under
// a 32-byte key that never touches the state folder: read at start from a
// systemd credential ($CREDENTIALS_DIRECTORY/qpd-db-key, sealed by
// `systemd-creds encrypt`, bound to the machine's TPM2 or host key) or a
// key file on another medium (--db-key-file). It protects the state of a
// stopped daemon against whoever gets the disk or a copy of it (a stolen
// laptop, a backup, a disk sent for repair), including the copies the file
// system keeps, which secure_delete cannot reach. It does not protect
// against the user's own account while qpd runs (the key is in memory and
// the socket answers the user), nor against root on a running machine.
package store
