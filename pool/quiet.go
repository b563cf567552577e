package pool

// readinessTracker is a socket that knows, without a system call, that
// nothing arrived since a read found it empty (the event loop's sockets:
// an event for new data or a hang-up marks them again). socketQuiet then
// needs no peek, which took a system call per hand-out of an idle
// connection.
type readinessTracker interface {
	MayHaveMore() bool
}
