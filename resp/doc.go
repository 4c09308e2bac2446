// Package resp is Sluice's network layer: it accepts connections, reads
// Redis protocol (RESP2 and inline) requests and writes RESP2/RESP3
// replies. It knows no command by name: every parsed command is handed to
// a Handler, which package commands implements. resp imports nothing else
// from Sluice.
//
// # Why we own the read loop
//
// The request reader is our own, not redcon's: redcon's reader panics on
// "*1\r\n$9223372036854775807\r\n", burns CPU on "*1000000000\r\n" and
// has no buffer cap. Ours is incremental (a partially received command
// keeps its progress, so a large bulk or a long pipeline is never parsed
// twice), parses "*N"/"$N" counts with at most 19 digits and no overflow,
// never allocates from a declared count, and enforces limits before
// buffering anything. Reply encoding reuses redcon's Append* functions for
// RESP2 types; RESP3 types are written here.
//
// # Limits
//
// Each Server limit field defaults when zero; Server.Limits reports the
// effective values. MaxArgs and MaxBulkLen bound a command's declared
// shape ("invalid multibulk length" / "invalid bulk length"), tightened to
// PreAuthMaxArgs and PreAuthMaxBulkLen while a connection is not
// authenticated (as Redis does since CVE-2021-32675). A "*N"/"$N" line
// without CRLF within 64 KiB and an inline line longer than MaxInlineLen
// are errors. MaxQueryBuffer caps the per-connection read buffer, hence
// the size of one command; MaxQueryBufferTotal caps what all connections'
// read buffers hold beyond their initial 16 KiB together: a connection
// whose buffer would grow past it is closed without a reply (logged,
// Stats.EvictedClients), and a closed connection gives its buffers back
// at once. Protocol errors are answered with Redis' exact
// error text, then the connection is closed and Stats.ProtocolErrors
// counts it. Inline requests that look like HTTP ("POST", "Host:", or a
// method followed by "HTTP/") are closed without a reply, as Redis does
// against cross-protocol attacks. MaxClients refuses extra connections
// with "-ERR max number of clients reached".
//
// # Batching and flushing
//
// Each connection has one goroutine, a read buffer (16 KiB, grown by
// doubling up to MaxQueryBuffer, compacted rather than grown when
// possible, and released after two idle seconds when oversized), a
// reused argument slice and a reused reply buffer. The loop is: run every
// complete command already buffered, appending replies to the reply
// buffer; flush it with a single Write; then read once. A read that did
// not fill the buffer drained the socket, so on a plain TCP or Unix socket
// (on Unix-like systems) the connection first waits on the runtime's poller until the socket is
// readable and only then reads (through syscall.RawConn), instead of
// net.Conn.Read's read-first, which fails with EAGAIN once per round trip.
// An unpipelined request therefore costs one read and one write system
// call, and a pipeline one of each per batch. The whole read loop runs in
// one RawConn.Read call, because entering one clears the poller's
// readiness mark (a request arriving just before would be waited for
// forever); Conn.Close wakes it with past deadlines rather than closing
// under it. TLS connections read with net.Conn.Read. Steady state
// allocates nothing per command. If the reply buffer reaches MaxPendingReply in the middle
// of a batch it is flushed before parsing continues, so a client that
// pipelines without reading blocks the write and is closed after
// WriteTimeout instead of growing memory without bound.
//
// Timeouts are socket deadlines, not timers or goroutines: the write
// deadline is refreshed at most every WriteTimeout/8; a read deadline is
// set only when IdleTimeout is non-zero (refreshed at most once a
// second), while unauthenticated with AuthRequired (AuthTimeout), or while
// an oversized buffer waits to be released. Shutdown wakes blocked
// readers with a past read deadline, lets each connection finish the
// commands it has read, flush, and close. A panic in a connection is
// recovered, logged with its stack, counted, and closes only that
// connection.
package resp
