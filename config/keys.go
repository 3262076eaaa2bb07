package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// A key is one settable leaf of Config, found by its toml tag, so that the
// file, the environment and flags cannot drift apart from the struct.
type key struct {
	name  string // dotted toml path: "log.level"
	env   string // SPACEPANDA_LOG_LEVEL
	index []int  // reflect field path from Config
}

var (
	keysOnce  sync.Once
	keyList   []key
	keyByName map[string]*key
)

func keys() []key {
	keysOnce.Do(func() {
		keyList = collectKeys(reflect.TypeFor[Config](), "", nil)
		keyByName = make(map[string]*key, len(keyList))
		for i := range keyList {
			keyByName[keyList[i].name] = &keyList[i]
		}
	})
	return keyList
}

func lookupKey(name string) *key {
	keys()
	return keyByName[name]
}

var durationType = reflect.TypeFor[Duration]()

func collectKeys(t reflect.Type, prefix string, index []int) []key {
	var out []key
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + tag
		idx := append(append([]int{}, index...), i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			out = append(out, collectKeys(f.Type, name+".", idx)...)
			continue
		}
		out = append(out, key{name: name, env: envName(name), index: idx})
	}
	return out
}

func envName(name string) string {
	return "SPACEPANDA_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(name))
}

func (k *key) field(c *Config) reflect.Value { return reflect.ValueOf(c).Elem().FieldByIndex(k.index) }

func (k *key) isDuration() bool { return k.field(&Config{}).Type() == durationType }

// set parses s as the key's type and stores it in c. Lists are
// comma-separated; blanks around items and empty items are dropped, so ""
// is the empty list.
func (k *key) set(c *Config, s string) error {
	v := k.field(c)
	if v.Type() == durationType {
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("not a duration: %w", err)
		}
		v.Set(reflect.ValueOf(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", s)
		}
		v.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		v.SetInt(int64(n))
	case reflect.Slice:
		return k.setList(c, splitList(s))
	default:
		panic("config: key " + k.name + " has an unsupported type " + v.Type().String())
	}
	return nil
}

func (k *key) setList(c *Config, items []string) error {
	v := k.field(c)
	if v.Kind() != reflect.Slice {
		return fmt.Errorf("takes one value, not a list")
	}
	v.Set(reflect.ValueOf(append([]string{}, items...)))
	return nil
}

func splitList(s string) []string {
	out := []string{}
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
