package backend

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/attach"
	"github.com/quicproquo/quicproquo/internal/content"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// This file is attachments: a file sent to a group goes encrypted
// (internal/attach: chunked AES-256-GCM under a fresh key) to the node's
// blob store, streamed while it is read, and the message carries its
// reference (internal/content's attachment part: blob, size, ciphertext
// hash, key, media type, name). The node holds ciphertext and never the
// key; only the group's members may fetch the blob. SaveAttachments
// downloads a message's files, checks every chunk and the hash as it
// decrypts, and only then puts each file in place: a corrupted or
// substituted blob is refused (ErrAttachmentCorrupt) and leaves nothing
// behind. Memory stays at a few chunks whatever the file's size.

// MaxAttachmentSize bounds a file sent as an attachment (the node has a
// limit of its own, by default the same).
const MaxAttachmentSize = 1 << 30

// blobLocation prefixes a blob id in an attachment reference's location.
const blobLocation = "qpq-blob:"

// Errors of attachments.
var (
	// ErrAttachmentCorrupt: a blob does not match its reference (changed,
	// cut, swapped by the node or on the way): nothing was saved.
	ErrAttachmentCorrupt = errors.New("attachment is corrupt: the downloaded data does not match the message's reference")
	// ErrNoAttachment: the message carries no attachment.
	ErrNoAttachment = errors.New("message has no attachment")
)

// Progress is told the bytes done of the file name so far, of total.
type Progress func(name string, done, total uint64)

// SavedFile is one attachment SaveAttachments wrote.
type SavedFile struct {
	Path      string
	Name      string // the name the sender gave
	MediaType string
	Size      uint64
}

// uploadAttachment encrypts the file at path to the node's blob store
// for the group and returns its reference.
func (b *Backend) uploadAttachment(ctx context.Context, groupID []byte, path, mediaType string, progress Progress) (content.Attachment, error) {
	f, err := os.Open(path)
	if err != nil {
		return content.Attachment{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return content.Attachment{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	case !fi.Mode().IsRegular():
		return content.Attachment{}, fmt.Errorf("%w: %s is not a regular file", ErrInvalidArgument, path)
	case fi.Size() > MaxAttachmentSize:
		return content.Attachment{}, fmt.Errorf("%w: %s has %d bytes, limit %d", ErrInvalidArgument, path, fi.Size(), MaxAttachmentSize)
	}
	name := safeName(filepath.Base(path))
	if mediaType == "" {
		mediaType = mime.TypeByExtension(filepath.Ext(name))
	}
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	c := b.client()
	if c == nil {
		return content.Attachment{}, fmt.Errorf("%w: an attachment goes to the node at once", ErrNotConnected)
	}
	size := uint64(fi.Size())
	pr, pw := io.Pipe()
	sealed := make(chan *attach.Sealed, 1)
	go func() {
		s, err := attach.Encrypt(pw, f, size)
		sealed <- s
		pw.CloseWithError(err)
	}()
	ctSize := attach.CiphertextSize(size)
	id, expires, err := c.UploadBlob(ctx, groupID, ctSize, pr, func(done uint64) {
		if progress != nil {
			progress(name, min(done, size), size)
		}
	})
	pr.CloseWithError(errors.New("upload ended"))
	s := <-sealed
	if err != nil {
		if s != nil {
			s.Wipe()
		}
		return content.Attachment{}, blobError("upload", err)
	}
	if s == nil {
		return content.Attachment{}, fmt.Errorf("%w: %s changed while it was read", ErrInvalidArgument, path)
	}
	a := content.Attachment{ContentType: mediaType, Location: blobLocation + hex.EncodeToString(id), Size: size,
		EncAlg: attach.EncAlg, Key: s.Key, Nonce: s.Prefix, HashAlg: content.HashSHA256, Hash: s.Hash, Name: name}
	if !expires.IsZero() && expires.Unix() > 0 && expires.Unix() < 1<<32 {
		a.Expires = uint32(expires.Unix())
	}
	return a, nil
}

// blobError maps the node's refusals of a blob operation.
func blobError(op string, err error) error {
	switch {
	case errors.Is(err, nodeclient.ErrTooLarge), errors.Is(err, nodeclient.ErrQuota), errors.Is(err, nodeclient.ErrLimit),
		errors.Is(err, nodeclient.ErrDiskFull), errors.Is(err, nodeclient.ErrInvalidArgument):
		return fmt.Errorf("%w: %s refused by the node: %w", ErrInvalidArgument, op, err)
	case errors.Is(err, nodeclient.ErrUnauthorized):
		return fmt.Errorf("%w: the node refuses the %s: the blob is gone (expired) or this user is no longer a member: %w", ErrNotMember, op, err)
	case errors.Is(err, nodeclient.ErrClosed):
		return fmt.Errorf("%w: %s: %w", ErrNotConnected, op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// safeName is a file name that cannot leave the folder it is saved in,
// hide, or trick a terminal.
func safeName(name string) string {
	if name = filepath.Base(name); name == "/" || name == "." {
		return "attachment"
	}
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || unicode.IsControl(r) || r == utf8.RuneError {
			return '_'
		}
		return r
	}, name)
	name = strings.TrimLeft(name, ".")
	if len(name) > 200 {
		name = name[:200]
		for !utf8.ValidString(name) {
			name = name[:len(name)-1]
		}
	}
	if name == "" {
		return "attachment"
	}
	return name
}

// parseBlobRef checks an attachment reference this daemon can open and
// returns its blob id and the sealing parameters.
func parseBlobRef(a *content.Attachment) ([]byte, *attach.Sealed, error) {
	loc, ok := strings.CutPrefix(a.Location, blobLocation)
	id, err := hex.DecodeString(loc)
	switch {
	case !ok || err != nil || len(id) == 0:
		return nil, nil, fmt.Errorf("%w: attachment %q is not in a blob store this daemon reads (%q)", ErrInvalidArgument, a.Name, a.Location)
	case a.EncAlg != attach.EncAlg || a.HashAlg != content.HashSHA256:
		return nil, nil, fmt.Errorf("%w: attachment %q uses algorithms %d/%d, this daemon reads %d/%d",
			ErrInvalidArgument, a.Name, a.EncAlg, a.HashAlg, attach.EncAlg, content.HashSHA256)
	case a.Size > MaxAttachmentSize:
		return nil, nil, fmt.Errorf("%w: attachment %q of %d bytes, limit %d", ErrInvalidArgument, a.Name, a.Size, MaxAttachmentSize)
	}
	return id, &attach.Sealed{Key: a.Key, Prefix: a.Nonce, Size: a.Size, Hash: a.Hash, CipherSize: attach.CiphertextSize(a.Size)}, nil
}

// SaveAttachments downloads the attachments of message seq of group into
// dir (an existing folder, absolute) and returns the files written. A
// name taken in dir gets a number ("photo (1).png"); nothing is
// overwritten.
// MessageByNumber returns the message of group whose number in the
// group's order is n (#N as recv shows it).
func (b *Backend) MessageByNumber(ctx context.Context, group string, n uint64) (store.Message, error) {
	var m store.Message
	err := b.view(ctx, func(tx *store.Tx) error {
		sg, err := resolveGroup(tx, group)
		if err != nil {
			return err
		}
		m, err = resolveMessage(tx, sg.ID, "#"+strconv.FormatUint(n, 10))
		return err
	})
	if err != nil {
		return store.Message{}, opError("save", err)
	}
	return m, nil
}

func (b *Backend) SaveAttachments(ctx context.Context, group string, seq uint64, dir string, progress Progress) ([]SavedFile, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("%w: folder %q is not an absolute path", ErrInvalidArgument, dir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: %q is not a folder", ErrInvalidArgument, dir)
	}
	var refs []content.Attachment
	err := b.view(ctx, func(tx *store.Tx) error {
		sg, err := resolveGroup(tx, group)
		if err != nil {
			return err
		}
		if _, err := tx.Message(sg.ID, seq); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%w: group %s has no message #%d", ErrInvalidArgument, sg.Name, seq)
			}
			return err
		}
		enc, err := tx.Attachments(sg.ID, seq)
		if err != nil {
			return err
		}
		for _, e := range enc {
			m, err := content.Parse(e)
			if err != nil {
				return fmt.Errorf("stored attachment of #%d: %w", seq, err)
			}
			refs = append(refs, m.Attachments()...)
		}
		return nil
	})
	if err != nil {
		return nil, opError("save attachments", err)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%w: message #%d", ErrNoAttachment, seq)
	}
	c := b.client()
	if c == nil {
		return nil, ErrNotConnected
	}
	var out []SavedFile
	for i := range refs {
		p, err := saveAttachment(ctx, c, &refs[i], dir, progress)
		if err != nil {
			return out, err
		}
		out = append(out, SavedFile{Path: p, Name: refs[i].Name, MediaType: refs[i].ContentType, Size: refs[i].Size})
	}
	return out, nil
}

// saveAttachment downloads, checks and decrypts one attachment into a
// temporary file in dir and links it in place once it is all genuine.
func saveAttachment(ctx context.Context, c *nodeclient.Client, a *content.Attachment, dir string, progress Progress) (string, error) {
	id, sealed, err := parseBlobRef(a)
	if err != nil {
		return "", err
	}
	name := safeName(a.Name)
	tmp, err := os.CreateTemp(dir, ".qpq-save-*")
	if err != nil {
		return "", fmt.Errorf("save %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	pr, pw := io.Pipe()
	downloaded := make(chan error, 1)
	go func() {
		err := c.DownloadBlob(ctx, id, sealed.CipherSize, pw, func(done uint64) {
			if progress != nil {
				progress(name, min(done, sealed.Size), sealed.Size)
			}
		})
		downloaded <- err
		pw.CloseWithError(err)
	}()
	derr := attach.Decrypt(tmp, pr, sealed)
	pr.CloseWithError(errors.New("save ended"))
	if err := <-downloaded; err != nil && derr != nil && !errors.Is(derr, attach.ErrCorrupt) {
		// The download failed (and so did decryption, for want of data).
		if errors.Is(err, nodeclient.ErrInvalidArgument) {
			// The node serves another size or chunk lengths than the reference says.
			return "", fmt.Errorf("%w: %s: %w", ErrAttachmentCorrupt, name, err)
		}
		return "", blobError("download", err)
	}
	switch {
	case errors.Is(derr, attach.ErrCorrupt), errors.Is(derr, attach.ErrTruncated), errors.Is(derr, attach.ErrTrailing),
		errors.Is(derr, attach.ErrInvalid):
		return "", fmt.Errorf("%w: %s: %w", ErrAttachmentCorrupt, name, derr)
	case derr != nil:
		return "", fmt.Errorf("save %s: %w", name, derr)
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("save %s: %w", name, err)
	}
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for n := 0; ; n++ {
		p := filepath.Join(dir, name)
		if n > 0 {
			p = filepath.Join(dir, fmt.Sprintf("%s (%d)%s", base, n, ext))
		}
		err := os.Link(tmp.Name(), p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, os.ErrExist) || n == 1000 {
			return "", fmt.Errorf("save %s: %w", name, err)
		}
	}
}
