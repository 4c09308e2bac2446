package persistence

import "fmt"

// Mode says when a recorded change reaches stable storage, as Redis's
// appendfsync does for its append-only file.
type Mode int

const (
	// Always fsyncs every change before the reply that depends on it is
	// sent: [Store.Wait] blocks until the changes recorded before it are
	// synced. Concurrent decisions share one fsync (group commit).
	Always Mode = iota + 1
	// EverySec writes changes through to the operating system without
	// waiting and fsyncs the journal within SyncInterval (one
	// second) of the first unsynced write. A crash of the machine loses at
	// most about that second.
	EverySec
	// No writes changes through to the operating system without ever asking
	// for an fsync (Close still syncs); the operating system decides when
	// they reach the disk.
	No
)

// String is the mode's flag spelling: always, everysec or no.
func (m Mode) String() string {
	switch m {
	case Always:
		return "always"
	case EverySec:
		return "everysec"
	case No:
		return "no"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads a mode's flag spelling: always, everysec or no.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "always":
		return Always, nil
	case "everysec":
		return EverySec, nil
	case "no":
		return No, nil
	}
	return 0, fmt.Errorf("fsync mode %q: must be always, everysec or no", s)
}
