package vectors

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSpecCopy keeps docs/spec identical to the brief's spec, when that
// (shared/spec beside the repository) is there to compare with.
func TestSpecCopy(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	root, err := repoRoot(wd)
	require.NoError(t, err)
	shared := filepath.Join(root, "..", "shared", "spec")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared/spec is not beside the repository (%v); nothing to compare", err)
	}
	for _, name := range []string{"throttle.md", "throttle-vectors.json"} {
		want, err := os.ReadFile(filepath.Join(shared, name))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(root, "docs", "spec", name))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "docs/spec/%s differs from ../shared/spec/%s: copy it again", name, name)
	}
}

// TestLoad reads the in-repository vectors: 89 rows, the frozen epoch.
func TestLoad(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	p, err := Path(wd)
	require.NoError(t, err)
	f, err := Load(p)
	require.NoError(t, err)
	assert.Len(t, f.Rows, 89)
	assert.Equal(t, int64(1893456000000000000), f.EpochNs)
}
