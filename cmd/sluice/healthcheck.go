package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// healthCheck is --healthcheck: it sends PING to the server this
// configuration describes, over loopback, and succeeds if any RESP reply
// comes back within two seconds. -NOAUTH counts as alive: the probe needs
// no password, so none is passed on its command line; so does -LOADING:
// the server is up, recovering its data directory.
func healthCheck(cfg config, stdout io.Writer) error {
	if cfg.Port == 0 {
		return errors.New("healthcheck: --port 0 has no plaintext listener to probe")
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port))
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("healthcheck: %s: %w", addr, err)
	}
	switch line {
	case "+PONG\r\n", "-NOAUTH Authentication required.\r\n", "-LOADING Sluice is loading the dataset in memory\r\n":
		fmt.Fprintf(stdout, "sluice at %s is up\n", addr)
		return nil
	}
	return errors.New("healthcheck: unexpected reply " + strconv.Quote(line))
}
