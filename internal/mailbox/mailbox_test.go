package mailbox

import "testing"

func TestPutDropsTheOldest(t *testing.T) {
	ch := make(chan int, 2)
	for i := 1; i <= 5; i++ {
		Put(ch, i)
	}
	if a, b := <-ch, <-ch; a != 4 || b != 5 {
		t.Fatalf("kept %d, %d; want the newest two, 4 and 5", a, b)
	}
}
