// Package server assembles a running Sluice from a [Config]: the state
// table and its clock, the durable copy on Pebble with recovery, the command
// server, the RESP listeners (plaintext and TLS), the metrics listener and
// the expiry sweep. It owns their start-up order, what reloads on request,
// and the order of shutdown. Command-line parsing, logging set-up and
// signals belong to cmd/sluice; tests start the same server through
// client/sluicetest.
package server
