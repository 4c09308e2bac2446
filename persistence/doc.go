// Package persistence will own Sluice's durable copy of the state table on
// Pebble. It is empty until persistence lands; Sluice runs purely in memory.
package persistence
