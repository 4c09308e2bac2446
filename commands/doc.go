// Package commands owns Sluice's command table and its handlers.
//
// Every command is one declaration (see [Command]): its name, arity (negative
// means "at least"), flags, key positions, documentation and handler. Dispatch,
// arity errors, COMMAND INFO/DOCS/COUNT/LIST and key extraction all read that
// same declaration, so adding a command is adding one entry and one handler.
//
// [Server] implements resp.Handler: the network layer hands it one parsed
// command at a time and it writes the reply through the connection's
// encoders. It knows nothing of sockets; the state lives in a gcra.Table and
// time comes from an injected clock, read once per command.
//
// Error replies use Redis's wording wherever Redis has one; they are defined
// once, as values, in errors.go.
package commands
