// Package deferred provides Queue, a list of functions to run later, typically
// after a lock has been released.
package deferred

// Queue collects functions with Defer and runs them with Run. The zero value is
// an empty queue ready to use. A Queue is not safe for concurrent use.
type Queue struct {
	fns []func()
}

// Defer appends f to the queue.
func (q *Queue) Defer(f func()) {
	q.fns = append(q.fns, f)
}

// Run calls every queued function in the order they were added, then empties
// the queue. Functions deferred while Run is running are run too.
func (q *Queue) Run() {
	for len(q.fns) > 0 {
		f := q.fns[0]
		q.fns[0] = nil
		q.fns = q.fns[1:]
		f()
	}
	q.fns = nil
}
