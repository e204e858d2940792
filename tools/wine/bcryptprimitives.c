/*
 * bcryptprimitives.dll for wine 8: Go's runtime (1.22 and later) calls
 * ProcessPrng from it for randomness, which wine 8 does not export (wine 9
 * does). This one implements it with BCryptGenRandom, which wine 8 has.
 * scripts/wine.sh builds it with mingw-w64 into the test prefix's
 * C:\windows\system32. Test-only: it never ships.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	/* BCryptGenRandom takes a ULONG: fill larger buffers in parts. */
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
