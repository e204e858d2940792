package source

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
)

// isGzip reports whether data starts with gzip's magic number.
func isGzip(data []byte) bool {
	return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
}

// gunzip decompresses data (all its members), charging the output to the
// decoder's budget and failing, having read at most one byte more, when the
// budget is spent.
func (d *decoder) gunzip(data []byte, origin string) ([]byte, error) {
	out, err := gunzipLimit(data, d.budget)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", origin, err)
	}
	d.budget -= int64(len(out))
	return out, nil
}

// gunzipLimit decompresses data, failing when the result exceeds limit
// bytes; it never holds more than limit+1 of them.
func gunzipLimit(data []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not valid gzip: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("not valid gzip: %w", err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("gzip data decompresses to more than %d bytes in all (EC2 user-data is at most 16 KiB compressed): refusing it as a gzip bomb", MaxDecompressed)
	}
	return out, nil
}
