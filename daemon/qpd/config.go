package qpd

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// The configuration file. Besides flags and QPQ_ environment variables,
// qpd reads a TOML file, by default $XDG_CONFIG_HOME/quicproquo/qpd.toml
// (~/.config/quicproquo/qpd.toml), another with --config or QPQ_CONFIG.
// Its keys are the long flags with "_" for "-":
//
//	server = "node.example.org:4201"
//	server_cert = "/home/me/.config/quicproquo/node.pem"
//	registration_token = "…"   # for a node that asks for one
//	state_dir = "/home/me/.local/share/quicproquo"
//	socket = "/run/user/1000/quicproquo/qpd.sock"
//	log_level = "info"
//	self_update_interval = "24h"
//	auto_join = true
//	invitations = "contacts"    # or "anyone"
//	keep_messages = "0s"        # 0: keep every message
//	keep_events = "0s"
//	default_suite = "pq"         # new groups post-quantum (X-Wing)
//	pq_key_packages = true
//	require_pq_tls = true
//
// A flag given on the command line wins over its environment variable,
// which wins over the file, which wins over the default. A missing default
// file is no error; a missing --config file, an unknown key or a bad value
// is.

// ConfigEnv names the configuration file instead of the default.
const ConfigEnv = "QPQ_CONFIG"

// DefaultConfigPath is $XDG_CONFIG_HOME/quicproquo/qpd.toml, else
// $HOME/.config/quicproquo/qpd.toml ("" without either).
func DefaultConfigPath(getenv func(string) string) string {
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "quicproquo", "qpd.toml")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "quicproquo", "qpd.toml")
	}
	return ""
}

// fileKeys are the keys the file may set, each naming the flag of that
// name with "-" for "_", and that flag's environment variable ("": none),
// which wins over the file.
var fileKeys = map[string]string{
	"state_dir":            "QPQ_STATE_DIR",
	"socket":               "QPQ_SOCKET",
	"server":               "QPQ_SERVER",
	"server_cert":          "QPQ_SERVER_CERT",
	"registration_token":   "QPQ_REGISTRATION_TOKEN",
	"log_level":            "QPQ_LOG_LEVEL",
	"self_update_interval": "",
	"auto_join":            "",
	"invitations":          "",
	"keep_messages":        "",
	"keep_events":          "",
	"default_suite":        "QPQ_DEFAULT_SUITE",
	"pq_key_packages":      "",
	"require_pq_tls":       "QPQ_REQUIRE_PQ_TLS",
}

// applyConfigFile sets, from the file at path, every flag of fset that was
// neither given on the command line nor through its environment variable.
// With explicit false, a missing file is no error.
func applyConfigFile(fset *flag.FlagSet, path string, explicit bool, getenv func(string) string) error {
	if path == "" {
		return nil
	}
	var raw map[string]any
	md, err := toml.DecodeFile(path, &raw)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: config file %s: %w", errUsage, path, err)
	}
	given := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { given[f.Name] = true })
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env, ok := fileKeys[k]
		if !ok {
			return fmt.Errorf("%w: config file %s: unknown key %q (known: %s)", errUsage, path, k, knownKeys())
		}
		v := raw[k]
		switch md.Type(k) {
		case "String", "Bool":
		default:
			return fmt.Errorf("%w: config file %s: %s = %v: want a string or a boolean", errUsage, path, k, v)
		}
		name := strings.ReplaceAll(k, "_", "-")
		if given[name] || (env != "" && getenv(env) != "") {
			continue
		}
		if err := fset.Set(name, fmt.Sprint(v)); err != nil {
			return fmt.Errorf("%w: config file %s: %s: %w", errUsage, path, k, err)
		}
	}
	return nil
}

func knownKeys() string {
	ks := make([]string, 0, len(fileKeys))
	for k := range fileKeys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}
