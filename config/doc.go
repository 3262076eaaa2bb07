// Package config turns defaults, the TOML file, SPACEPANDA_* environment
// variables and command-line flags into one validated [Config] for
// spacepandad. It imports nothing else of the project (docs/DESIGN.md): the
// daemon copies what it needs into p2p's, store's and node's own configs.
//
// # Precedence
//
// From lowest to highest: [Default], the TOML file, the environment, flags.
// A layer that sets a key replaces the lower layer's value whole; lists are
// not merged, so SPACEPANDA_BOOTSTRAP= (empty) clears the file's bootstrap
// list.
//
// The data directory is resolved first, because the file lives in it:
// --data-dir, else $SPACEPANDA_DATA_DIR, else $XDG_DATA_HOME/spacepanda, else
// ~/.local/share/spacepanda. The file is --config if given (it must then
// exist) or <data dir>/config.toml if that exists.
//
// # Usage
//
// The caller (cmd/spacepandad):
//
//   - fills [Sources] with only the flags the user actually set, os.Environ(),
//     $HOME and $XDG_DATA_HOME, and calls [Load];
//   - prints Load's error as it is and exits: every message names the key and
//     where its bad value came from (file and line, variable or flag), and
//     all problems are reported at once (the error is an errors.Join of
//     [*Error]s);
//   - logs each of [Config.Warnings] (unknown SPACEPANDA_ variables, which
//     are not errors because the environment is not the user's to control
//     alone);
//   - creates DataDir itself: Load reads the disk but never writes it;
//   - for `spacepandad config`, prints [Config.TOML], which Load reads back
//     to the same Config.
//
// [ExampleFile] documents every key with its default.
package config
