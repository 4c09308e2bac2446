package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestValidateReplication: the replication settings' problems are each
// reported, naming the flag; CONFIG GET redacts masterauth and spells
// repl-timeout in seconds, as Redis does.
func TestValidateReplication(t *testing.T) {
	c := Default()
	c.ReplicaOf = "10.0.0.5 6379"
	require.NoError(t, c.Validate())
	host, port, err := c.replicaOf()
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.5", host)
	assert.Equal(t, 6379, port)

	for _, bad := range []string{"10.0.0.5", "10.0.0.5 0", "10.0.0.5 x", "a b c", "h 65536"} {
		c.ReplicaOf = bad
		assert.ErrorContains(t, c.Validate(), "--replicaof", bad)
	}
	c = Default()
	c.ReplBacklogSize = 100
	c.ReplBufferLimit = 50
	c.ReplTimeout = time.Millisecond
	err = c.Validate()
	require.Error(t, err)
	assert.ErrorContains(t, err, "--repl-backlog-size 100: must be at least 16384")
	assert.ErrorContains(t, err, "--repl-buffer-limit 50: must be at least --repl-backlog-size 100")
	assert.ErrorContains(t, err, "--repl-timeout 1ms: must be at least 1s")

	c = Default()
	c.MasterAuth = "secret"
	shown := map[string]string{}
	for _, s := range c.shown() {
		shown[s.Name] = s.Value
	}
	assert.Equal(t, "<redacted>", shown["masterauth"])
	assert.Equal(t, "60", shown["repl-timeout"])
	assert.Equal(t, "1048576", shown["repl-backlog-size"])
}
