/* An LD_PRELOAD shim for benchmarks: every fdatasync and fsync of the process takes
 * SLOW_FSYNC_MS milliseconds longer (a slow disk without root or a special device).
 *
 *   gcc -shared -fPIC -O2 -o /tmp/slow_fsync.so crates/raftkv/examples/slow_fsync.c -ldl
 *   LD_PRELOAD=/tmp/slow_fsync.so SLOW_FSYNC_MS=100 target/release/examples/load ...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void slow_down(void) {
    const char *ms = getenv("SLOW_FSYNC_MS");
    long n = ms ? strtol(ms, NULL, 10) : 0;
    if (n > 0) {
        struct timespec ts = {n / 1000, (n % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    slow_down();
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    slow_down();
    return real(fd);
}
