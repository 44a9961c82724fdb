/* A stand-in for Windows' bcryptprimitives.dll, which Wine 8.0 lacks and Rust's standard library
   imports for ProcessPrng (its source of random bytes since Rust 1.78). It fills the buffer from
   RtlGenRandom (advapi32's SystemFunction036), which Wine implements over the system's generator.
   Built with mingw by windows/wine-runner on first use, into a Wine prefix of the runner's own;
   never shipped and never needed on Windows itself. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG piece = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, piece)) {
            return FALSE;
        }
        data += piece;
        length -= piece;
    }
    return TRUE;
}
