package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// ErrConfig marks a scenario configuration that cannot be run: bad JSON, an
// unknown action, a missing actor or a reference to a step that does not
// hold the value asked for.
var ErrConfig = errors.New("interop: bad scenario config")

// Action names a scenario step, as spelled in the configs.
type Action string

// The actions of the scenario config format.
const (
	ActionCreateGroup                    Action = "createGroup"
	ActionCreateKeyPackage               Action = "createKeyPackage"
	ActionJoinGroup                      Action = "joinGroup"
	ActionExternalJoin                   Action = "externalJoin"
	ActionInstallExternalPSK             Action = "installExternalPSK"
	ActionGroupInfo                      Action = "groupInfo"
	ActionAddProposal                    Action = "addProposal"
	ActionUpdateProposal                 Action = "updateProposal"
	ActionRemoveProposal                 Action = "removeProposal"
	ActionExternalPSKProposal            Action = "externalPSKProposal"
	ActionResumptionPSKProposal          Action = "resumptionPSKProposal"
	ActionGroupContextExtensionsProposal Action = "groupContextExtensionsProposal"
	ActionFullCommit                     Action = "fullCommit"
	ActionCommit                         Action = "commit"
	ActionHandleCommit                   Action = "handleCommit"
	ActionHandlePendingCommit            Action = "handlePendingCommit"
	ActionProtect                        Action = "protect"
	ActionUnprotect                      Action = "unprotect"
	ActionReInit                         Action = "reinit"
	ActionBranch                         Action = "branch"
	ActionNewMemberAddProposal           Action = "newMemberAddProposal"
	ActionAddExternalSigner              Action = "addExternalSigner"
	ActionExternalSignerProposal         Action = "externalSignerProposal"
)

// knownActions lists every action the format defines; the runner carries
// out the ones in runnableActions and reports the rest as unsupported.
var knownActions = map[Action]bool{
	ActionCreateGroup: true, ActionCreateKeyPackage: true, ActionJoinGroup: true, ActionExternalJoin: true,
	ActionInstallExternalPSK: true, ActionGroupInfo: true, ActionAddProposal: true, ActionUpdateProposal: true,
	ActionRemoveProposal: true, ActionExternalPSKProposal: true, ActionResumptionPSKProposal: true,
	ActionGroupContextExtensionsProposal: true, ActionFullCommit: true, ActionCommit: true,
	ActionHandleCommit: true, ActionHandlePendingCommit: true, ActionProtect: true, ActionUnprotect: true,
	ActionReInit: true, ActionBranch: true, ActionNewMemberAddProposal: true, ActionAddExternalSigner: true,
	ActionExternalSignerProposal: true,
}

// Extension is a group context extension as written in a config: its
// extension_data is base64 in JSON.
type Extension struct {
	Type uint32 `json:"extension_type"`
	Data []byte `json:"extension_data"`
}

// ProposalDescription is a proposal to build inside a commit ("byValue").
type ProposalDescription struct {
	ProposalType      string      `json:"proposalType"`
	KeyPackage        int         `json:"keyPackage"`
	Removed           string      `json:"removed"`
	PSKID             int         `json:"pskID"`
	EpochID           uint64      `json:"epochID"`
	Extensions        []Extension `json:"extensions"`
	ChangeGroupID     bool        `json:"changeGroupID"`
	ChangeCipherSuite bool        `json:"changeCipherSuite"`
}

// Step is one scenario step: Action and Actor, plus the parameters of that
// action (unused ones stay zero). Step indexes (KeyPackage, Welcome, PSKID,
// Ciphertext, Commit, ByReference, PSKs) point back at earlier steps of the
// same script, counted from 0.
type Step struct {
	Action Action `json:"action"`
	Actor  string `json:"actor"`

	Members []string `json:"members"`
	Joiners []string `json:"joiners"`
	Joiner  string   `json:"joiner"`
	Clients []string `json:"clients"`

	KeyPackage int         `json:"keyPackage"`
	Welcome    int         `json:"welcome"`
	Removed    string      `json:"removed"`
	PSKID      int         `json:"pskID"`
	EpochID    uint64      `json:"epochID"`
	Extensions []Extension `json:"extensions"`

	ByReference    []int                 `json:"byReference"`
	ByValue        []ProposalDescription `json:"byValue"`
	ForcePath      bool                  `json:"force_path"`
	ExternalTree   bool                  `json:"external_tree"`
	ExternalTreeJ  bool                  `json:"externalTree"` // externalJoin, groupInfo, reinit, branch
	ForcePathCamel bool                  `json:"forcePath"`    // reinit, branch
	RemovePrior    bool                  `json:"removePrior"`
	PSKs           []int                 `json:"psks"`

	AuthenticatedData string `json:"authenticatedData"`
	Plaintext         string `json:"plaintext"`
	Ciphertext        int    `json:"ciphertext"`
	Commit            int    `json:"commit"`

	// reinit parameters (Proposer may be empty when ExternalReinitProposal
	// names the step with an external signer's ReInit proposal) and
	// external-signer parameters.
	Proposer               string               `json:"proposer"`
	Committer              string               `json:"committer"`
	Welcomer               string               `json:"welcomer"`
	ChangeCipherSuite      bool                 `json:"changeCipherSuite"`
	ChangeGroupID          bool                 `json:"changeGroupID"`
	ExternalReinitProposal int                  `json:"externalReinitProposal"`
	Signer                 string               `json:"signer"`
	Member                 string               `json:"member"`
	Description            *ProposalDescription `json:"description"`
}

// Script is an ordered list of steps.
type Script []Step

// Config is a scenario file: named scripts.
type Config struct {
	Mode    string            `json:"mode,omitempty"`
	Scripts map[string]Script `json:"scripts"`
}

// ParseConfig decodes and checks a scenario config. Unknown fields and
// actions are errors (they would otherwise be silently ignored), and every
// step index must point at an earlier step.
func ParseConfig(data []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the config object", ErrConfig)
	}
	if len(c.Scripts) == 0 {
		return nil, fmt.Errorf("%w: no scripts", ErrConfig)
	}
	for _, name := range c.ScriptNames() {
		if err := c.Scripts[name].check(); err != nil {
			return nil, fmt.Errorf("%w: script %q: %v", ErrConfig, name, err)
		}
	}
	return &c, nil
}

// ScriptNames returns the script names in sorted order.
func (c *Config) ScriptNames() []string {
	names := make([]string, 0, len(c.Scripts))
	for n := range c.Scripts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s Script) check() error {
	if len(s) == 0 {
		return errors.New("empty script")
	}
	for i, st := range s {
		if !knownActions[st.Action] {
			return fmt.Errorf("step %d: unknown action %q", i, st.Action)
		}
		if st.Actor == "" && st.Action != ActionInstallExternalPSK && st.Action != ActionReInit {
			return fmt.Errorf("step %d (%s): no actor", i, st.Action)
		}
		earlier := func(what string, j int) error {
			if j < 0 || j >= i {
				return fmt.Errorf("step %d (%s): %s refers to step %d, want an earlier step", i, st.Action, what, j)
			}
			return nil
		}
		var refs []error
		switch st.Action {
		case ActionAddProposal:
			refs = append(refs, earlier("keyPackage", st.KeyPackage))
		case ActionJoinGroup:
			refs = append(refs, earlier("welcome", st.Welcome))
		case ActionExternalPSKProposal:
			refs = append(refs, earlier("pskID", st.PSKID))
		case ActionUnprotect:
			refs = append(refs, earlier("ciphertext", st.Ciphertext))
		case ActionHandleCommit:
			refs = append(refs, earlier("commit", st.Commit))
		case ActionExternalJoin, ActionNewMemberAddProposal:
			if st.Joiner == "" {
				return fmt.Errorf("step %d (%s): no joiner", i, st.Action)
			}
			for _, j := range st.PSKs {
				refs = append(refs, earlier("psks", j))
			}
		case ActionInstallExternalPSK:
			if len(st.Clients) == 0 {
				return fmt.Errorf("step %d (%s): no clients", i, st.Action)
			}
		case ActionReInit:
			if st.Committer == "" || st.Welcomer == "" {
				return fmt.Errorf("step %d (%s): needs a committer and a welcomer", i, st.Action)
			}
			if st.Proposer == "" {
				refs = append(refs, earlier("externalReinitProposal", st.ExternalReinitProposal))
			}
		case ActionAddExternalSigner:
			if st.Signer == "" {
				return fmt.Errorf("step %d (%s): no signer", i, st.Action)
			}
		case ActionExternalSignerProposal:
			if st.Member == "" || st.Description == nil {
				return fmt.Errorf("step %d (%s): needs a member and a description", i, st.Action)
			}
			switch st.Description.ProposalType {
			case "add":
				refs = append(refs, earlier("description keyPackage", st.Description.KeyPackage))
			case "externalPSK":
				refs = append(refs, earlier("description pskID", st.Description.PSKID))
			}
		}
		for _, j := range st.ByReference {
			refs = append(refs, earlier("byReference", j))
		}
		for _, pd := range st.ByValue {
			switch pd.ProposalType {
			case "add":
				refs = append(refs, earlier("byValue keyPackage", pd.KeyPackage))
			case "externalPSK":
				refs = append(refs, earlier("byValue pskID", pd.PSKID))
			case "remove", "resumptionPSK", "groupContextExtensions", "reinit":
			default:
				return fmt.Errorf("step %d (%s): unknown byValue proposal type %q", i, st.Action, pd.ProposalType)
			}
		}
		if err := errors.Join(refs...); err != nil {
			return err
		}
	}
	return nil
}

// Actors returns every actor a script names (as actor, member, joiner,
// client or signer), sorted.
func (s Script) Actors() []string {
	set := map[string]bool{}
	add := func(names ...string) {
		for _, n := range names {
			if n != "" {
				set[n] = true
			}
		}
	}
	for _, st := range s {
		add(st.Actor, st.Joiner, st.Signer, st.Proposer, st.Committer, st.Welcomer, st.Member)
		add(st.Members...)
		add(st.Joiners...)
		add(st.Clients...)
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
