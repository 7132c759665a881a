// Package mailbox holds the one way the agent hands pushes to a slow
// reader without blocking: a buffered channel whose oldest item gives way.
package mailbox

// Put sends v on ch without blocking: when ch is full its oldest item is
// dropped to make room. Readers that reload anyway (My requests) lose
// nothing that matters; the sender (the agent's link) never waits.
func Put[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
			select {
			case <-ch:
			default:
			}
		}
	}
}
