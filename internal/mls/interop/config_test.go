package interop

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseConfigs reads every scenario file in testdata and checks the
// parts of it the runner relies on.
func TestParseConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs in testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseConfig(data)
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			for _, name := range c.ScriptNames() {
				if len(c.Scripts[name].Actors()) == 0 {
					t.Errorf("script %s: no actors", name)
				}
			}
		})
	}
}

func TestParseConfigDetails(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "commit.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	add := c.Scripts["add"]
	if got := add[6]; got.Action != ActionFullCommit || got.Actor != "alice" || !got.ForcePath ||
		len(got.ByReference) != 2 || got.ByReference[1] != 5 || len(got.ByValue) != 1 ||
		got.ByValue[0].ProposalType != "add" || got.ByValue[0].KeyPackage != 3 ||
		strings.Join(got.Joiners, ",") != "charlie1,charlie2,charlie3" {
		t.Errorf("add step 6 = %+v", got)
	}
	gce := c.Scripts["group_context_extensions"][1]
	if len(gce.Extensions) != 2 || gce.Extensions[0].Type != 3 || string(gce.Extensions[0].Data) != "\x00\x00\x00" ||
		gce.Extensions[1].Type != 5 || string(gce.Extensions[1].Data) != "\x00" {
		t.Errorf("group_context_extensions step 1 extensions = %+v", gce.Extensions)
	}
	if got := strings.Join(add.Actors(), ","); got != "alice,bob,charlie1,charlie2,charlie3,charlie4,charlie5,charlie6" {
		t.Errorf("add actors = %s", got)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := map[string]string{
		"not json":                 `{"scripts":`,
		"no scripts":               `{"scripts":{}}`,
		"empty script":             `{"scripts":{"a":[]}}`,
		"unknown action":           `{"scripts":{"a":[{"action":"dance","actor":"alice"}]}}`,
		"unknown field":            `{"scripts":{"a":[{"action":"createGroup","actor":"alice","colour":1}]}}`,
		"no actor":                 `{"scripts":{"a":[{"action":"createGroup"}]}}`,
		"forward ref":              `{"scripts":{"a":[{"action":"createGroup","actor":"a"},{"action":"unprotect","actor":"b","ciphertext":1}]}}`,
		"negative ref":             `{"scripts":{"a":[{"action":"createGroup","actor":"a"},{"action":"fullCommit","actor":"a","byReference":[-1]}]}}`,
		"bad byValue":              `{"scripts":{"a":[{"action":"createGroup","actor":"a"},{"action":"fullCommit","actor":"a","byValue":[{"proposalType":"hug"}]}]}}`,
		"no joiner":                `{"scripts":{"a":[{"action":"createGroup","actor":"a"},{"action":"externalJoin","actor":"a"}]}}`,
		"no psk clients":           `{"scripts":{"a":[{"action":"installExternalPSK"}]}}`,
		"trailing object":          `{"scripts":{"a":[{"action":"createGroup","actor":"a"}]}} {}`,
		"reinit without committer": `{"scripts":{"a":[{"action":"createGroup","actor":"a"},{"action":"reinit","proposer":"a","welcomer":"a"}]}}`,
		"reinit forward proposal":  `{"scripts":{"a":[{"action":"createGroup","actor":"a"},{"action":"reinit","committer":"a","welcomer":"a","externalReinitProposal":1}]}}`,
		"bad base64":               `{"scripts":{"a":[{"action":"groupContextExtensionsProposal","actor":"a","extensions":[{"extension_type":1,"extension_data":"!"}]}]}}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig([]byte(in))
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("ParseConfig(%s) error = %v, want ErrConfig", in, err)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"application.json", "welcome_join.json", "external_join.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"scripts":{"a":[{"action":"createGroup","actor":"a"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not match ErrConfig", err)
			}
			return
		}
		for _, name := range c.ScriptNames() {
			if err := c.Scripts[name].check(); err != nil {
				t.Fatalf("parsed script %s fails its own check: %v", name, err)
			}
		}
	})
}
