package jobenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := Parse("f", []byte(`{"PATH": "/opt/venv/bin:/usr/bin", "A": "it's 100% $HOME\n", "EMPTY": ""}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "A=it's 100% $HOME\n|EMPTY=|PATH=/opt/venv/bin:/usr/bin" {
		t.Fatalf("Parse = %q", got)
	}
	for _, bad := range []struct{ doc, want string }{
		{`{"TICKGATE_JOB": "x"}`, "TICKGATE_ variables are tickgate's own"},
		{`{"1A": "x"}`, "is not a variable name"},
		{`{"A=B": "x"}`, "is not a variable name"},
		{`{"": "x"}`, "empty variable name"},
		{`{"A": "x\u0000y"}`, "NUL byte"},
		{`{"A": 1}`, "does not parse"},
		{`["A=1"]`, "does not parse"},
		{`{"A": "x"} {}`, "more than one JSON value"},
	} {
		if _, err := Parse("f", []byte(bad.doc)); err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "environment file f") {
			t.Errorf("Parse(%s) = %v, want an error naming the file and %q", bad.doc, err, bad.want)
		}
	}
}

// The file must be tickgate's and private: a value may be a credential.
func TestLoadChecksTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "j.json")
	if err := os.WriteFile(p, []byte(`{"A": "1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(p, nil); err != nil || len(got) != 1 {
		t.Fatalf("Load = %q, %v", got, err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, nil); err == nil || !strings.Contains(err.Error(), "others could read the job's variables") {
		t.Fatalf("a world-readable file: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "k.json")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(link, nil); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("a link: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.json"), nil); err == nil {
		t.Fatal("a missing file: no error (the job would run without its environment)")
	}
}
