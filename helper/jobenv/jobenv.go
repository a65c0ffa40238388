// Package jobenv reads a job's own environment: the variables its
// `environment:` gives its command, and nothing else. The deploy writes them
// to a file only tickgate reads (ENV_DIR/JOB.json, the supervisor's, 0600:
// a value may be a credential), never into the unit's Environment=, so they
// reach the job's process and never its supervisor: a job that sets PATH,
// LD_PRELOAD, GODEBUG or HTTPS_PROXY for itself changes nothing about how
// tickgate runs.
package jobenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tickgate/tickgate/helper/safefs"
)

// MaxSize caps the file.
const MaxSize = 256 << 10

// Load reads path: a JSON object of variable names to string values. The
// file must be tickgate's (root's or the supervisor's, not a link, writable
// and readable by no one else). It returns NAME=VALUE pairs sorted by name.
func Load(path string, owners *safefs.Owners) ([]string, error) {
	d, err := safefs.OpenRoot(filepath.Dir(path), false, 0)
	if err != nil {
		return nil, fmt.Errorf("environment file: %w", err)
	}
	defer d.Close()
	if err := d.Trusted(owners); err != nil {
		return nil, fmt.Errorf("environment file %s: %w", path, err)
	}
	data, fi, err := d.ReadOwned(filepath.Base(path), MaxSize, owners, true)
	if err != nil {
		return nil, fmt.Errorf("environment file %s: %w", path, err)
	}
	if fi.Mode&0o077 != 0 {
		return nil, fmt.Errorf("environment file %s has mode %04o: others could read the job's variables (want 0600)", path, fi.Mode)
	}
	return Parse(path, data)
}

// Parse checks and decodes the file's content (path names it in errors).
func Parse(path string, data []byte) ([]string, error) {
	var vars map[string]string
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&vars); err != nil {
		return nil, fmt.Errorf("environment file %s does not parse (want a JSON object of names to strings): %v", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("environment file %s: more than one JSON value", path)
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		if err := ValidName(k); err != nil {
			return nil, fmt.Errorf("environment file %s: %v", path, err)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("environment file %s: the value of %s holds a NUL byte", path, k)
		}
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// ValidName checks a variable name: ^[A-Za-z_][A-Za-z0-9_]*$, and not one of
// tickgate's own (TICKGATE_*), which the command gets from its supervisor.
func ValidName(k string) error {
	if k == "" {
		return errors.New("an empty variable name")
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return fmt.Errorf("%q is not a variable name (want [A-Za-z_][A-Za-z0-9_]*)", k)
	}
	if strings.HasPrefix(k, "TICKGATE_") {
		return fmt.Errorf("%s: TICKGATE_ variables are tickgate's own (set for the command by its supervisor)", k)
	}
	return nil
}
