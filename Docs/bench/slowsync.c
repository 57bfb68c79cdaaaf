// A disk whose flush is slower than this VM's (~0.1 ms): an LD_PRELOAD shim that makes every
// fsync and fdatasync of the process wait SLOW_SYNC_US microseconds (default 1000) more.
// Benchmarks only (BENCHMARKS.md, session 9):
//   clang -O2 -shared -fPIC -o /tmp/slowsync.so Docs/bench/slowsync.c -ldl
//   SLOW_SYNC_US=1000 LD_PRELOAD=/tmp/slowsync.so .build/release/dbos-bench queue1
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

static useconds_t extraMicroseconds(void) {
    const char *value = getenv("SLOW_SYNC_US");
    return value ? (useconds_t)atoi(value) : 1000;
}

int fdatasync(int descriptor) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    usleep(extraMicroseconds());
    return real(descriptor);
}

int fsync(int descriptor) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    usleep(extraMicroseconds());
    return real(descriptor);
}
