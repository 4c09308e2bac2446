package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestParsePerfCSV: counts are read by event name, uncounted events are 0,
// comments and blank lines are skipped.
func TestParsePerfCSV(t *testing.T) {
	out := "# started on Fri Nov 27 20:50:36 2026\n\n" +
		"2544,,raw_syscalls:sys_enter,61502105,100.00,,\n" +
		"<not counted>,,syscalls:sys_exit_read,0,100.00,,\n" +
		"52,,context-switches,61537982,100.00,,\n" +
		"Events disabled\n"
	assert.Equal(t, map[string]uint64{
		"raw_syscalls:sys_enter": 2544, "syscalls:sys_exit_read": 0, "context-switches": 52,
	}, parsePerfCSV(out))
}

// TestPerfArgs: a filter follows its event.
func TestPerfArgs(t *testing.T) {
	assert.Equal(t, []string{"-e", "raw_syscalls:sys_enter", "-e", "syscalls:sys_exit_read", "--filter", "ret == -11"},
		perfArgs([]perfEvent{{name: "raw_syscalls:sys_enter"}, {name: "syscalls:sys_exit_read", filter: "ret == -11"}}))
}
