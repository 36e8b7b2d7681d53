package mls

import (
	"bytes"
	"errors"
	"testing"
)

func TestLeafNodeSignatureBindsGroupAndIndex(t *testing.T) {
	for _, cs := range SupportedSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			s, err := LookupSuite(cs)
			if err != nil {
				t.Fatal(err)
			}
			ln, sigPriv := treeTestLeaf(t, s, "alice")
			// key_package source: no group binding.
			if err := ln.VerifySignature(s, []byte("any"), 7); err != nil {
				t.Fatalf("key_package leaf: %v", err)
			}
			ln.Source, ln.Lifetime = LeafNodeSourceUpdate, nil
			if err := ln.Sign(s, sigPriv, []byte("group"), 3); err != nil {
				t.Fatal(err)
			}
			if err := ln.VerifySignature(s, []byte("group"), 3); err != nil {
				t.Fatalf("update leaf: %v", err)
			}
			if err := ln.VerifySignature(s, []byte("group"), 4); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("other leaf index: %v, want ErrInvalidSignature", err)
			}
			if err := ln.VerifySignature(s, []byte("other"), 3); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("other group: %v, want ErrInvalidSignature", err)
			}
			ln.Capabilities.Extensions = append(ln.Capabilities.Extensions, 0x0a0a)
			if err := ln.VerifySignature(s, []byte("group"), 3); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("changed content: %v, want ErrInvalidSignature", err)
			}
		})
	}
}

func TestLeafNodeRoundTrip(t *testing.T) {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := treeTestLeaf(t, s, "alice")
	ln.Extensions = []Extension{{Type: ExtensionApplicationID, Data: []byte("app")}}
	commit := *ln.Clone()
	commit.Source, commit.Lifetime, commit.ParentHash = LeafNodeSourceCommit, nil, []byte{1, 2, 3}
	update := *ln.Clone()
	update.Source, update.Lifetime = LeafNodeSourceUpdate, nil
	for _, v := range []*LeafNode{ln, &commit, &update} {
		got, err := ParseLeafNode(v.Marshal())
		if err != nil {
			t.Fatalf("%v: %v", v.Source, err)
		}
		if !got.Equal(v) {
			t.Fatalf("%v: round trip differs", v.Source)
		}
		if (got.Lifetime != nil) != (v.Source == LeafNodeSourceKeyPackage) {
			t.Fatalf("%v: lifetime presence wrong", v.Source)
		}
	}
	if err := ln.CheckCapabilities(); err != nil {
		t.Fatalf("default extension needs no capability: %v", err)
	}
	ln.Extensions = append(ln.Extensions, Extension{Type: 0xff00})
	if err := ln.CheckCapabilities(); err == nil {
		t.Fatal("unlisted extension accepted")
	}
	ln.Capabilities.Extensions = []ExtensionType{0xff00}
	ln.Capabilities.Credentials = []CredentialType{CredentialX509}
	if err := ln.CheckCapabilities(); err == nil {
		t.Fatal("unlisted credential type accepted")
	}
}

func FuzzLeafNode(f *testing.F) {
	for _, b := range treeVectorTrees(f) {
		tree, err := ParseRatchetTree(b)
		if err != nil {
			f.Fatal(err)
		}
		for _, i := range tree.Members() {
			f.Add(tree.LeafNode(i).Marshal())
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ln, err := ParseLeafNode(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not match ErrDecode: %v", err)
			}
			return
		}
		if !bytes.Equal(ln.Marshal(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}
