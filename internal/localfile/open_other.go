//go:build !unix

package localfile

// openNonblock is 0: on Windows opening a file never waits for a writer
// (named pipes live under \\.\pipe\, and Open refuses what is not a
// regular file).
const openNonblock = 0
