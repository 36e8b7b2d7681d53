package content

import (
	"fmt"
	"math"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// Disposition is MIMI's disposition of a part: how it is meant to be
// shown.
type Disposition uint8

// The dispositions MIMI defines; 9 to 255 are unknown ones, kept.
const (
	DispositionUnspecified Disposition = iota
	DispositionRender
	DispositionReaction
	DispositionProfile
	DispositionInline
	DispositionIcon
	DispositionAttachment
	DispositionSession
	DispositionPreview
)

// Known reports whether MIMI defines d.
func (d Disposition) Known() bool { return d <= DispositionPreview }

// Cardinality is what a part holds.
type Cardinality uint8

// MIMI's cardinalities.
const (
	CardinalityNull     Cardinality = iota // nothing (a delete)
	CardinalitySingle                      // one body of a media type
	CardinalityExternal                    // a reference to encrypted content elsewhere
	CardinalityMulti                       // two or more parts
)

// Semantics is how the parts of a multipart go together.
type Semantics uint8

// MIMI's part semantics.
const (
	SemanticsChooseOne Semantics = iota
	SemanticsSingleUnit
	SemanticsProcessAll
)

// Media types this package knows.
const (
	MediaTypeText   = "text/plain;charset=utf-8"
	MediaTypeStatus = "application/mimi-message-status"
)

// Limits of parts.
const (
	maxPartDepth      = 4   // multiparts within multiparts
	maxParts          = 64  // parts in one message
	maxLanguageSize   = 64  // bytes of a language tag
	maxMediaTypeSize  = 255 // bytes of a media type
	maxPartsSemantics = SemanticsProcessAll
)

// Part is MIMI's NestedPart. Which fields are used follows Cardinality:
// Single uses ContentType and Content (or Receipt for MediaTypeStatus),
// External uses Attachment, Multi uses Semantics and Parts.
type Part struct {
	Disposition Disposition
	Language    string
	Cardinality Cardinality

	ContentType string
	Content     []byte
	Receipt     *Receipt

	Attachment *Attachment

	Semantics Semantics
	Parts     []Part
}

// TextPart is a text/plain part of the given disposition.
func TextPart(d Disposition, text string) Part {
	return Part{Disposition: d, Cardinality: CardinalitySingle, ContentType: MediaTypeText, Content: []byte(text)}
}

// IsText reports whether p is a single text/plain part in UTF-8 (a
// missing charset is taken as UTF-8).
func (p *Part) IsText() bool {
	return p.Cardinality == CardinalitySingle && isTextType(p.ContentType)
}

func isTextType(ct string) bool {
	if ct == MediaTypeText || ct == "text/plain" {
		return true // what this package writes, without the parse
	}
	t, params, err := mime.ParseMediaType(ct)
	if err != nil || t != "text/plain" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

func isStatusType(ct string) bool {
	if ct == MediaTypeStatus {
		return true
	}
	t, _, err := mime.ParseMediaType(ct)
	return err == nil && t == MediaTypeStatus
}

// known reports whether this package understands p itself (not its
// subparts).
func (p *Part) known() bool {
	if !p.Disposition.Known() {
		return false
	}
	switch p.Cardinality {
	case CardinalitySingle:
		return p.IsText() || p.Receipt != nil
	case CardinalityMulti:
		return p.Semantics <= maxPartsSemantics
	}
	return true
}

func (p *Part) parse(field string, raw cbor.RawMessage, depth int, count *int) error {
	if *count++; *count > maxParts {
		return fieldErr(field, ErrTooLarge, "more than %d parts", maxParts)
	}
	a, err := arrayField(field, raw, 3+12)
	if err != nil {
		return err
	}
	if len(a) < 3 {
		return fieldErr(field, ErrInvalid, "%d items", len(a))
	}
	d, err := uintField(field+".disposition", a[0], math.MaxUint8)
	if err != nil {
		return err
	}
	p.Disposition = Disposition(d)
	if p.Language, err = textField(field+".language", a[1], maxLanguageSize); err != nil {
		return err
	}
	c, err := uintField(field+".cardinality", a[2], uint64(CardinalityMulti))
	if err != nil {
		return err
	}
	p.Cardinality = Cardinality(c)
	rest := a[3:]
	want := map[Cardinality]int{CardinalityNull: 0, CardinalitySingle: 2, CardinalityExternal: 12, CardinalityMulti: 2}[p.Cardinality]
	if len(rest) != want {
		return fieldErr(field, ErrInvalid, "%d items for cardinality %d, want %d", len(rest), c, want)
	}
	switch p.Cardinality {
	case CardinalitySingle:
		if p.ContentType, err = textField(field+".contentType", rest[0], maxMediaTypeSize); err != nil {
			return err
		}
		if p.Content, err = bytesField(field+".content", rest[1], MaxSize); err != nil {
			return err
		}
		switch {
		case isTextType(p.ContentType):
			if !utf8.Valid(p.Content) {
				return fieldErr(field+".content", ErrInvalid, "text is not UTF-8")
			}
		case isStatusType(p.ContentType):
			r, err := parseReceipt(field+".content", p.Content)
			if err != nil {
				return err
			}
			p.Receipt, p.Content = r, nil
		}
	case CardinalityExternal:
		p.Attachment = &Attachment{}
		return p.Attachment.parse(field, rest)
	case CardinalityMulti:
		if depth >= maxPartDepth {
			return fieldErr(field, ErrTooLarge, "multiparts nested deeper than %d", maxPartDepth)
		}
		s, err := uintField(field+".partSemantics", rest[0], math.MaxUint8)
		if err != nil {
			return err
		}
		p.Semantics = Semantics(s)
		parts, err := arrayField(field+".parts", rest[1], maxParts)
		if err != nil {
			return err
		}
		if len(parts) < 2 {
			return fieldErr(field+".parts", ErrInvalid, "%d parts, want 2 or more", len(parts))
		}
		p.Parts = make([]Part, len(parts))
		for i, raw := range parts {
			if err := p.Parts[i].parse(fmt.Sprintf("%s.%d", field, i), raw, depth+1, count); err != nil {
				return err
			}
		}
	}
	return nil
}

// marshal is p as a value for the encoder. What it writes is checked by
// Append parsing it again.
func (p *Part) marshal(field string) (any, error) {
	a := []any{uint64(p.Disposition), p.Language, uint64(p.Cardinality)}
	switch p.Cardinality {
	case CardinalityNull:
	case CardinalitySingle:
		content := p.Content
		if p.Receipt != nil {
			var err error
			if content, err = p.Receipt.marshal(field); err != nil {
				return nil, err
			}
		}
		if content == nil {
			content = []byte{}
		}
		a = append(a, p.ContentType, content)
	case CardinalityExternal:
		if p.Attachment == nil {
			return nil, fieldErr(field, ErrInvalid, "external part without attachment")
		}
		a = append(a, p.Attachment.marshal()...)
	case CardinalityMulti:
		parts := make([]any, len(p.Parts))
		for i := range p.Parts {
			v, err := p.Parts[i].marshal(fmt.Sprintf("%s.%d", field, i))
			if err != nil {
				return nil, err
			}
			parts[i] = v
		}
		a = append(a, uint64(p.Semantics), parts)
	default:
		return nil, fieldErr(field, ErrInvalid, "cardinality %d", p.Cardinality)
	}
	return a, nil
}
