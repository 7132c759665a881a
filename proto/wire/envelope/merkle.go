package envelope

import (
	"bytes"
	"crypto/sha256"
	"slices"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// A fan-out is signed once over the Merkle root of its device ids, sorted
// and distinct: leaves are SHA-256(0x00 || id), inner nodes
// SHA-256(0x01 || left || right), and an odd node at the end of a level
// moves up unchanged. The relay gives each agent the proof of its leaf
// (about 10 hashes for 1,000 devices) rather than the whole list.

// SortedIDs returns ids sorted, without duplicates or empty strings.
func SortedIDs(ids []string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	s = slices.Compact(s)
	if len(s) > 0 && s[0] == "" {
		s = s[1:]
	}
	return s
}

func leaf(id string) []byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write([]byte(id))
	return h.Sum(nil)
}

func node(l, r []byte) []byte {
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(l)
	h.Write(r)
	return h.Sum(nil)
}

// Tree is the Merkle tree of a device list.
type Tree struct {
	ids    []string
	levels [][][]byte
}

// NewTree builds the tree of ids (sorted and made distinct first).
func NewTree(ids []string) *Tree {
	t := &Tree{ids: SortedIDs(ids)}
	lv := make([][]byte, len(t.ids))
	for i, id := range t.ids {
		lv[i] = leaf(id)
	}
	t.levels = append(t.levels, lv)
	for len(lv) > 1 {
		next := make([][]byte, 0, (len(lv)+1)/2)
		for i := 0; i < len(lv); i += 2 {
			if i+1 < len(lv) {
				next = append(next, node(lv[i], lv[i+1]))
			} else {
				next = append(next, lv[i])
			}
		}
		t.levels = append(t.levels, next)
		lv = next
	}
	return t
}

// Root returns the root hash; nil for an empty list.
func (t *Tree) Root() []byte {
	top := t.levels[len(t.levels)-1]
	if len(top) == 0 {
		return nil
	}
	return top[0]
}

// Len is the number of leaves.
func (t *Tree) Len() int { return len(t.ids) }

// Proof returns the proof of id, or nil when id is not in the list.
func (t *Tree) Proof(id string) *desksidev1.DeviceProof {
	i, ok := slices.BinarySearch(t.ids, id)
	if !ok {
		return nil
	}
	p := &desksidev1.DeviceProof{Index: uint32(i)}
	for _, lv := range t.levels[:len(t.levels)-1] {
		if sib := i ^ 1; sib < len(lv) {
			p.Siblings = append(p.Siblings, lv[sib])
		}
		i /= 2
	}
	return p
}

// VerifyProof reports whether id is leaf p.Index of the tree of count
// leaves with the given root.
func VerifyProof(root []byte, count uint32, id string, p *desksidev1.DeviceProof) bool {
	i, n := int(p.GetIndex()), int(count)
	if i >= n {
		return false
	}
	h, sibs := leaf(id), p.GetSiblings()
	for n > 1 {
		if i^1 < n {
			if len(sibs) == 0 {
				return false
			}
			if i%2 == 0 {
				h = node(h, sibs[0])
			} else {
				h = node(sibs[0], h)
			}
			sibs = sibs[1:]
		}
		i, n = i/2, (n+1)/2
	}
	return len(sibs) == 0 && bytes.Equal(h, root)
}
