package config

import (
	"errors"
	"fmt"
)

// ErrConfigNotFound is returned (wrapped in an *Error for the key "config")
// when Sources.ConfigFlag names a file that does not exist: a file the user
// named is never silently skipped.
var ErrConfigNotFound = errors.New("config: file not found")

// Error is one problem with one key. Load joins all it finds with
// errors.Join, so a caller can list them or errors.As the first.
type Error struct {
	// Key is the dotted config key ("log.level"), or "data_dir" or
	// "config" for the resolution inputs.
	Key string
	// Source says where the bad value came from: "default",
	// "/path/config.toml:12", "env SPACEPANDA_LOG_LEVEL" or
	// "flag --log.level".
	Source string
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("config: %s (from %s): %v", e.Key, e.Source, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
