package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

// chunkSize is the unit bodies are read and charged in. Most deliveries (5-60 KB) fit one chunk,
// which the handler then reads in place; larger ones are joined once their signature is verified.
const chunkSize = 64 << 10

// SmallBody is the largest Content-Length of a "small" delivery. GitHub's deliveries are nearly
// all far below it; bodies declared larger, or of unknown length, may use only the part of the
// unverified-bytes budget that leaves a quarter of it free for small ones.
const SmallBody = 1 << 20

// chunkPool recycles chunks: deliveries arrive thousands a second.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// budget counts the bytes of request bodies read but not yet verified, over every request, so
// that unauthenticated senders cannot make the process hold more than max of them. It never
// blocks: a request that cannot get more is refused at once, so nobody queues behind a sender
// that stalls.
type budget struct {
	used    atomic.Int64
	max     int64
	reserve int64 // kept for small bodies
}

// acquire charges n bytes, or reports false when that would pass the limit of the body's class.
func (b *budget) acquire(n int64, large bool) bool {
	limit := b.max
	if large {
		limit -= b.reserve
	}
	for {
		u := b.used.Load()
		if u+n > limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *budget) release(n int64) { b.used.Add(-n) }

// Errors of reading a body.
var (
	errTooLarge = errors.New("body too large")
	errBusy     = errors.New("unverified-bytes budget exhausted")
	errLonger   = errors.New("body longer than its Content-Length")
)

// body is one request body, read in chunks charged to the budget, its HMAC computed on the way
// so that verifying it costs no second pass.
type body struct {
	b       *budget
	chunks  []*[]byte
	n       int   // bytes read
	charged int64 // bytes charged to b, given back on verify or free
	mac     hash.Hash
}

// read reads r to its end, at most MaxBody bytes, charging the budget before it takes memory:
//
//   - a small body (declared at most SmallBody) is charged chunk by chunk as its bytes arrive,
//     so a sender that promises a body and sends nothing costs nothing;
//   - a large one (declared more) is charged its whole declared length up front, so that two
//     large deliveries never starve each other half-way, but only from the part of the budget
//     that leaves Reserve to small ones; its chunks are still taken only as bytes arrive;
//   - one of unknown length (chunked) is charged chunk by chunk, as a large one.
//
// A declared length never allocates anything by itself.
func (in *Intake) read(r io.Reader, declared int64) (*body, error) {
	bd := &body{b: in.budget, mac: hmac.New(sha256.New, in.secret)}
	upfront := declared > SmallBody
	if upfront {
		n := (declared + chunkSize - 1) / chunkSize * chunkSize
		if !bd.b.acquire(n, true) {
			return bd, errBusy
		}
		bd.charged = n
	}
	for {
		if bd.n == len(bd.chunks)*chunkSize { // the chunks are full: is there more?
			first, err := readOne(r)
			if err == io.EOF {
				return bd, nil
			}
			if err != nil {
				return bd, err
			}
			switch {
			case bd.n >= MaxBody:
				return bd, errTooLarge
			case upfront && int64(bd.n) >= bd.charged:
				return bd, errLonger // net/http stops at Content-Length; this is a guard
			case !upfront && !bd.b.acquire(chunkSize, declared < 0):
				return bd, errBusy
			case !upfront:
				bd.charged += chunkSize
			}
			c := chunkPool.Get().(*[]byte)
			bd.chunks = append(bd.chunks, c)
			(*c)[0] = first
			bd.mac.Write((*c)[:1])
			bd.n++
		}
		c := *bd.chunks[len(bd.chunks)-1]
		start := (len(bd.chunks) - 1) * chunkSize
		off, limit := bd.n-start, min(chunkSize, MaxBody-start)
		k, err := r.Read(c[off:limit])
		bd.mac.Write(c[off : off+k])
		bd.n += k
		if err == io.EOF {
			return bd, nil
		}
		if err != nil {
			return bd, err
		}
	}
}

// readOne reads one byte.
func readOne(r io.Reader) (byte, error) {
	var b [1]byte
	for {
		k, err := r.Read(b[:])
		if k == 1 {
			return b[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// verified reports whether sum is the body's HMAC, in constant time, and gives the body's
// bytes back to the budget: from here on they belong to a delivery GitHub signed.
func (bd *body) verified(sum []byte) bool {
	bd.b.release(bd.charged)
	bd.charged = 0
	var want [sha256.Size]byte
	return hmac.Equal(bd.mac.Sum(want[:0]), sum)
}

// bytes is the whole body: the first chunk itself when it holds everything, else one slice
// made once (after verification, so only for a delivery GitHub signed).
func (bd *body) bytes() []byte {
	switch len(bd.chunks) {
	case 0:
		return nil
	case 1:
		return (*bd.chunks[0])[:bd.n]
	}
	out := make([]byte, 0, bd.n)
	for i, c := range bd.chunks {
		end := chunkSize
		if i == len(bd.chunks)-1 {
			end = bd.n - i*chunkSize
		}
		out = append(out, (*c)[:end]...)
	}
	return out
}

// free returns the chunks to the pool and any charge to the budget. Nothing may use bytes()
// afterwards.
func (bd *body) free() {
	bd.b.release(bd.charged)
	bd.charged = 0
	for _, c := range bd.chunks {
		chunkPool.Put(c)
	}
	bd.chunks = nil
}
