package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileName is the file in the data directory that keeps the node id and
// the topology:
//
//	# comment lines
//	id <40 hex digits>
//	version <n>            (absent before the first topology)
//	<the topology, in the CLUSTERX SETNODES text>
const FileName = "cluster.conf"

// TempFileName is where a new FileName is written and synced before it
// replaces the old one. Both may be in the data directory at any time.
const TempFileName = FileName + ".tmp"

func filePath(dir string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, FileName)
}

// kept is what the file holds.
type kept struct {
	id       string
	topology *Topology
}

// readFile reads the file at path; a missing file (or no path) keeps
// nothing. A file that does not read is an error naming it: a node must not
// start with a topology other than the one it was given.
func readFile(path string) (kept, error) {
	var k kept
	if path == "" {
		return k, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return k, fmt.Errorf("cluster state: %w", err)
	}
	bad := func(format string, args ...any) (kept, error) {
		return kept{}, fmt.Errorf("cluster state %s: %s (fix the file, or remove it to start with a new id and no topology)",
			path, fmt.Sprintf(format, args...))
	}
	var nodes []string
	version := int64(-1)
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(nil, len(b)+1)
	for sc.Scan() {
		line := sc.Text()
		switch key, val, _ := strings.Cut(line, " "); {
		case strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "":
		case key == "id" && k.id == "" && len(nodes) == 0:
			if k.id = strings.TrimSpace(val); !ValidID(k.id) {
				return bad("id %q is not 40 hex digits", k.id)
			}
		case key == "version" && version < 0 && len(nodes) == 0:
			if version, err = strconv.ParseInt(strings.TrimSpace(val), 10, 64); err != nil || version < 0 {
				return bad("version %q is not a non-negative integer", val)
			}
		default:
			nodes = append(nodes, line)
		}
	}
	if k.id == "" {
		return bad("no id line")
	}
	if (version < 0) != (len(nodes) == 0) {
		return bad("a topology needs both its version and its nodes")
	}
	if version >= 0 {
		if k.topology, err = Parse(strings.Join(nodes, "\n"), version); err != nil {
			return bad("%v", err)
		}
	}
	return k, nil
}

// writeFile replaces the file at path with v's id and topology: written to
// a temporary file, synced, renamed over the old one, and the directory
// synced, so a crash leaves the old file or the new one.
func writeFile(path string, v *View) error {
	if path == "" {
		return nil
	}
	var b strings.Builder
	b.WriteString("# Sluice cluster state: this node's id and the topology of CLUSTERX SETNODES. Written by the server.\n")
	fmt.Fprintf(&b, "id %s\n", v.ID)
	if t := v.Topology; t != nil {
		fmt.Fprintf(&b, "version %d\n%s\n", t.Version, t.Text())
	}
	tmp := filepath.Join(filepath.Dir(path), TempFileName)
	if err := writeSynced(tmp, b.String()); err != nil {
		return fmt.Errorf("cluster state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cluster state: %w", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("cluster state: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cluster state: sync %s: %w", filepath.Dir(path), err)
	}
	return nil
}

func writeSynced(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
