@0xc1d0a3b5e2f48a17;
# Blobs: the ciphertext of attachments.

using Go = import "/go.capnp";
$Go.package("blob");
$Go.import("github.com/quicproquo/quicproquo/schemas/blob");

interface BlobService {
  # Members of a group store encrypted attachments here and the group's
  # members read them; the node never sees a key (it travels in the
  # MLS-encrypted message). A blob is uploaded in chunks of chunkSize
  # bytes (the last one shorter), in order, one call each, so no call and
  # no buffer holds more than a chunk. Blobs expire like messages, and
  # quotas bound one uploader's live blobs and all of them (quota, limit,
  # diskFull). Every call needs a registered identity; only a current
  # member of the blob's group (the roster of the node's public view of
  # the group) may read it: anyone else gets unauthorized, as does anyone
  # naming an unknown blob, so an outsider learns nothing of it.

  createBlob @0 (groupId :Data, size :UInt64) -> (blobId :Data, chunkSize :UInt32, expiresUnixNano :Int64);
  # Starts a blob of size bytes for groupId, of which the caller must be
  # a member. blobId is 16 random bytes; the blob expires (complete or
  # not) at expiresUnixNano. A size above the node's limit is tooLarge.

  putBlobChunk @1 (blobId :Data, index :UInt32, data :Data) -> (complete :Bool);
  # Stores chunk index of a blob the caller created: index must be the
  # next chunk (or one already stored: a retry, answered the same), data
  # exactly the chunk's length. complete is true once the last chunk is in.

  blobInfo @2 (blobId :Data) -> (size :UInt64, chunkSize :UInt32, complete :Bool, expiresUnixNano :Int64);
  # What the node knows of a blob, for its group's members.

  getBlobChunk @3 (blobId :Data, index :UInt32) -> (data :Data);
  # Chunk index of a complete blob, for its group's members.
}
