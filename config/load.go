package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Sources is everything Load reads besides the file. Leave a field empty
// for "not given".
type Sources struct {
	// Flags holds the flags the user set, by config key ("listen",
	// "log.level"). Pass only those actually given on the command line,
	// or flag defaults would override the file and the environment. A
	// list-valued key takes a comma-separated value.
	Flags map[string]string
	// FlagLists holds repeatable list flags (listen, bootstrap,
	// auto_accept), one entry per occurrence; each occurrence may also be
	// comma-separated. A key may be in Flags or FlagLists, not both.
	FlagLists map[string][]string
	// Env is the environment in os.Environ form. SPACEPANDA_DATA_DIR and
	// the SPACEPANDA_<KEY> variables are read; any other SPACEPANDA_
	// variable is named in Config.Warnings, since it may be a
	// misspelling, but is not an error (see Warnings). When a
	// variable repeats, the first wins, as with os.Getenv.
	Env []string
	// DataDirFlag is --data-dir.
	DataDirFlag string
	// ConfigFlag is --config.
	ConfigFlag string
	// Home and XDGDataHome are $HOME and $XDG_DATA_HOME, for finding the
	// data directory when neither --data-dir nor SPACEPANDA_DATA_DIR is
	// set.
	Home, XDGDataHome string
}

const (
	envDataDir = "SPACEPANDA_DATA_DIR"
	// fileName is the config file looked for in the data directory.
	fileName = "config.toml"
	// socketName is the RPC socket's default name in the data directory.
	socketName = "spacepanda.sock"
)

// Load resolves the data directory, reads the config file and applies the
// environment and flags over Default, then validates the result. On error
// the Config is the zero value and the error joins one *Error per problem.
func Load(src Sources) (Config, error) {
	env, unknown := readEnv(src.Env)
	var errs []error

	dataDir, err := resolveDataDir(src, env)
	if err != nil {
		return Config{}, errors.Join(append(errs, err)...)
	}
	c := Default()
	c.DataDir = dataDir
	from := make(map[string]string) // key -> source of its current value

	path, data, err := findFile(src.ConfigFlag, dataDir)
	if err != nil {
		return Config{}, errors.Join(append(errs, err)...)
	}
	if path != "" {
		c.ConfigFile = path
		// On a bad file go on, so that bad variables and flags are
		// reported in the same run; validation is skipped either way.
		if err := decodeFile(&c, path, data, from); err != nil {
			errs = append(errs, err)
		}
	}

	for _, k := range keys() {
		v, ok := env.vars[k.env]
		if !ok {
			continue
		}
		src := "env " + k.env
		if err := k.set(&c, v); err != nil {
			errs = append(errs, &Error{Key: k.name, Source: src, Err: err})
			continue
		}
		from[k.name] = src
	}

	errs = append(errs, applyFlags(&c, src, from)...)
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}

	for _, name := range unknown {
		c.Warnings = append(c.Warnings, "env "+name+": unknown variable, ignored")
	}
	if c.Socket == "" {
		c.Socket = filepath.Join(dataDir, socketName)
		from["socket"] = "default (data dir " + dataDir + ")"
	}
	if errs := validate(&c, from); len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

type environ struct {
	vars map[string]string
}

// readEnv returns the SPACEPANDA_ variables and, sorted, the names of those
// that are neither a key's variable nor SPACEPANDA_DATA_DIR.
func readEnv(list []string) (environ, []string) {
	e := environ{vars: make(map[string]string)}
	var unknown []string
	for _, kv := range list {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "SPACEPANDA_") {
			continue
		}
		if _, dup := e.vars[name]; dup {
			continue
		}
		e.vars[name] = val
		if name != envDataDir && !knownEnv(name) {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	return e, unknown
}

func knownEnv(name string) bool {
	for _, k := range keys() {
		if k.env == name {
			return true
		}
	}
	return false
}

func resolveDataDir(src Sources, env environ) (string, error) {
	switch {
	case src.DataDirFlag != "":
		return filepath.Clean(src.DataDirFlag), nil
	case env.vars[envDataDir] != "":
		return filepath.Clean(env.vars[envDataDir]), nil
	// The XDG base directory spec says a relative $XDG_DATA_HOME is
	// invalid and must be ignored.
	case filepath.IsAbs(src.XDGDataHome):
		return filepath.Join(src.XDGDataHome, "spacepanda"), nil
	case src.Home != "":
		return filepath.Join(src.Home, ".local", "share", "spacepanda"), nil
	}
	return "", &Error{Key: "data_dir", Source: "resolution",
		Err: errors.New("no --data-dir, $" + envDataDir + ", $XDG_DATA_HOME or $HOME to find it")}
}

// findFile returns the config file's path and contents, or "" if there is
// none to read.
func findFile(flag, dataDir string) (string, []byte, error) {
	if flag != "" {
		data, err := os.ReadFile(flag)
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, &Error{Key: "config", Source: "flag --config", Err: fmt.Errorf("%w: %s", ErrConfigNotFound, flag)}
		}
		if err != nil {
			return "", nil, &Error{Key: "config", Source: "flag --config", Err: err}
		}
		return flag, data, nil
	}
	path := filepath.Join(dataDir, fileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, &Error{Key: "config", Source: path, Err: err}
	}
	return path, data, nil
}

// decodeFile decodes data over c, refusing keys Config does not have, and
// records in from the file and line of every key the file sets.
func decodeFile(c *Config, path string, data []byte, from map[string]string) error {
	lines, kinds := keyLines(data)
	// The decoder hands a non-string value to Duration.UnmarshalText and
	// then returns its error without key or line, so catch those first.
	var errs []error
	for _, k := range keys() {
		if kind, ok := kinds[k.name]; ok && k.isDuration() && kind != unstable.String {
			errs = append(errs, &Error{Key: k.name, Source: path + ":" + strconv.Itoa(lines[k.name]),
				Err: fmt.Errorf("want a duration string such as \"1s\", got %s", strings.ToLower(kind.String()))})
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Decode into a copy so that a half-applied file never leaks out.
	next := *c
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&next); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			errs := make([]error, 0, len(strict.Errors))
			for i := range strict.Errors {
				e := &strict.Errors[i]
				errs = append(errs, fileError(path, e, errors.New("unknown key"), lines))
			}
			return errors.Join(errs...)
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			return fileError(path, de, err, lines)
		}
		return &Error{Key: "(file)", Source: path, Err: err}
	}
	*c = next
	for name, line := range lines {
		from[name] = path + ":" + strconv.Itoa(line)
	}
	return nil
}

// fileError places err in the file: at the decoder's position if it gives
// one, else at the line that set the key.
func fileError(path string, de *toml.DecodeError, err error, lines map[string]int) error {
	key := strings.Join(de.Key(), ".")
	line, _ := de.Position()
	if line <= 0 {
		line = lines[key]
	}
	src := path
	if line > 0 {
		src += ":" + strconv.Itoa(line)
	}
	if key == "" {
		key = "(file)" // a syntax error belongs to no key
	}
	return &Error{Key: key, Source: src, Err: err}
}

// keyLines maps each dotted key the document sets to the line that sets
// it, so that errors found after decoding (a bad log level) can point at
// the line too, and each key-value to the kind of its value. Tables count
// as keys. It stops at a syntax error, which the decoder then reports with
// its position.
func keyLines(data []byte) (lines map[string]int, kinds map[string]unstable.Kind) {
	lines = make(map[string]int)
	kinds = make(map[string]unstable.Kind)
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e)
			lines[strings.Join(table, ".")] = p.Shape(e.Child().Raw).Start.Line
		case unstable.KeyValue:
			addKeyValue(&p, lines, kinds, table, e)
		}
	}
	return lines, kinds
}

func addKeyValue(p *unstable.Parser, lines map[string]int, kinds map[string]unstable.Kind, table []string, kv *unstable.Node) {
	name := append(append([]string{}, table...), keyParts(kv)...)
	dotted := strings.Join(name, ".")
	lines[dotted] = p.Shape(kv.Raw).Start.Line
	kinds[dotted] = kv.Value().Kind
	if v := kv.Value(); v.Kind == unstable.InlineTable {
		it := v.Children()
		for it.Next() {
			if n := it.Node(); n.Kind == unstable.KeyValue {
				addKeyValue(p, lines, kinds, name, n)
			}
		}
	}
}

func keyParts(n *unstable.Node) []string {
	var parts []string
	it := n.Key()
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

func applyFlags(c *Config, src Sources, from map[string]string) []error {
	var errs []error
	for _, name := range sortedKeys(src.Flags) {
		s := "flag --" + name
		k := lookupKey(name)
		if k == nil {
			errs = append(errs, &Error{Key: name, Source: s, Err: errors.New("unknown key")})
			continue
		}
		if _, both := src.FlagLists[name]; both {
			errs = append(errs, &Error{Key: name, Source: s, Err: errors.New("given both as a single and as a repeated flag")})
			continue
		}
		if err := k.set(c, src.Flags[name]); err != nil {
			errs = append(errs, &Error{Key: name, Source: s, Err: err})
			continue
		}
		from[name] = s
	}
	for _, name := range sortedKeys(src.FlagLists) {
		s := "flag --" + name
		k := lookupKey(name)
		if k == nil {
			errs = append(errs, &Error{Key: name, Source: s, Err: errors.New("unknown key")})
			continue
		}
		if _, both := src.Flags[name]; both {
			continue // reported above
		}
		var items []string
		for _, v := range src.FlagLists[name] {
			items = append(items, splitList(v)...)
		}
		if err := k.setList(c, items); err != nil {
			errs = append(errs, &Error{Key: name, Source: s, Err: err})
			continue
		}
		from[name] = s
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
