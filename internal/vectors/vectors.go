// Package vectors loads the THROTTLE reference vectors
// (docs/spec/throttle-vectors.json: replies observed from redis-cell under a
// frozen clock, with Sluice's expected reply) for the tests of several
// packages.
package vectors

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Row is one command of a scenario. Expect is nil when the reply must be an
// error beginning with "ERR".
type Row struct {
	Scenario string
	TNs      int64
	Args     []string
	Expect   []int64
	Note     string
}

// File is the whole vectors file.
type File struct {
	EpochNs int64
	Rows    []Row
}

type rawFile struct {
	EpochNs int64 `json:"epoch_ns"`
	Rows    []struct {
		Scenario string          `json:"scenario"`
		TNs      int64           `json:"t_ns"`
		Args     []string        `json:"args"`
		Expect   json.RawMessage `json:"expect"`
		Note     string          `json:"note"`
	} `json:"rows"`
}

// Path returns the vectors file of the repository that holds dir (the
// calling test's working directory): docs/spec/throttle-vectors.json beside
// the go.mod above dir.
func Path(dir string) (string, error) {
	root, err := repoRoot(dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "docs", "spec", "throttle-vectors.json"), nil
}

// repoRoot returns the nearest directory at or above dir holding go.mod.
func repoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// Load reads and decodes the vectors file at path.
func Load(path string) (File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return File{}, err
	}
	var raw rawFile
	if err := json.Unmarshal(b, &raw); err != nil {
		return File{}, fmt.Errorf("decode %s: %w", path, err)
	}
	f := File{EpochNs: raw.EpochNs}
	for i, r := range raw.Rows {
		row := Row{Scenario: r.Scenario, TNs: r.TNs, Args: r.Args, Note: r.Note}
		var s string
		if err := json.Unmarshal(r.Expect, &s); err == nil {
			if s != "ERR" {
				return File{}, fmt.Errorf("row %d: unexpected expect %q", i, s)
			}
		} else if err := json.Unmarshal(r.Expect, &row.Expect); err != nil {
			return File{}, fmt.Errorf("row %d: %w", i, err)
		}
		f.Rows = append(f.Rows, row)
	}
	return f, nil
}
