/* Calls the guest's busybox lacks, for the virtio-fs guest tests (compiled with gcc -static).
 *
 *   zh setxattr PATH NAME VALUE      zh getxattr PATH NAME       zh fsync PATH
 *   zh runas UID GID PROGRAM ARGS... (no supplementary groups)
 *   zh csd PATH KERNEL SIZE          bind KERNEL (by inode) to PATH for this process, read SIZE
 *                                    bytes through O_DIRECT, print the histogram's 256 counts
 *   zh fill PATH                     write 1 MiB blocks until an error; print "FILLED bytes errno"
 *   zh pattern write|check PATH MIB SEED
 *                                    write (through the page cache: O_RDWR) or check MIB MiB of the
 *                                    pattern word[i] = splitmix64(SEED + i), so the host can check it too
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

/* splitmix64: cheap enough under TCG, and numpy computes the same words on the host. */
static uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int fail(const char *what) {
    fprintf(stderr, "zh: %s: %s\n", what, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    if (argc >= 5 && !strcmp(argv[1], "setxattr")) {
        return setxattr(argv[2], argv[3], argv[4], strlen(argv[4]), 0) ? fail("setxattr") : 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "getxattr")) {
        char value[4096];
        ssize_t n = getxattr(argv[2], argv[3], value, sizeof value);
        if (n < 0) return fail("getxattr");
        fwrite(value, 1, n, stdout);
        putchar('\n');
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "fsync")) {
        int fd = open(argv[2], O_RDWR);
        if (fd < 0) return fail("open");
        if (write(fd, "synced\n", 7) != 7 || fsync(fd) || fdatasync(fd)) return fail("fsync");
        return close(fd) ? fail("close") : 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "runas")) {
        if (setgroups(0, NULL) || setgid(atoi(argv[3])) || setuid(atoi(argv[2]))) return fail("runas");
        execv(argv[4], argv + 4);
        return fail("exec");
    }
    if (argc >= 5 && !strcmp(argv[1], "csd")) {
        struct stat st;
        char ino[32];
        size_t size = strtoul(argv[4], NULL, 0);
        if (stat(argv[3], &st)) return fail("stat kernel");
        snprintf(ino, sizeof ino, "%llu", (unsigned long long)st.st_ino);
        int fd = open(argv[2], O_RDONLY | O_DIRECT);  /* a binding is for a process that has the file open */
        if (fd < 0) return fail("open O_DIRECT");
        if (setxattr(argv[2], "user.process.csd_read_stream", ino, strlen(ino), 0)) return fail("bind");
        uint64_t *buf;
        if (posix_memalign((void **)&buf, 4096, size < 4096 ? 4096 : size)) return fail("memalign");
        ssize_t n = pread(fd, buf, size, 0);
        if (n != 2048) {
            fprintf(stderr, "zh: csd read returned %zd, not a 2048-byte histogram\n", n);
            return 1;
        }
        printf("HISTOGRAM");
        for (int i = 0; i < 256; i++) printf(" %llu", (unsigned long long)buf[i]);
        printf("\n");
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "fill")) {
        static char block[1 << 20];
        memset(block, 0x5a, sizeof block);
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) return fail("open");
        long long total = 0;
        int err = 0;
        for (;;) {
            ssize_t n = write(fd, block, sizeof block);
            if (n < 0) { err = errno; break; }
            total += n;
        }
        if (fsync(fd) && !err) err = errno;
        printf("FILLED %lld %d\n", total, err);
        close(fd);
        return 0;
    }
    if (argc >= 6 && !strcmp(argv[1], "pattern")) {
        static uint64_t block[(1 << 20) / 8], got[(1 << 20) / 8];
        int writing = !strcmp(argv[2], "write");
        long mib = atol(argv[4]);
        uint64_t seed = strtoull(argv[5], NULL, 0), word = 0;
        int fd = open(argv[3], writing ? O_RDWR | O_CREAT | O_TRUNC : O_RDONLY, 0644);
        if (fd < 0) return fail("open");
        for (long m = 0; m < mib; m++) {
            for (size_t i = 0; i < sizeof block / 8; i++) block[i] = mix(seed + word++);
            if (writing) {
                if (write(fd, block, sizeof block) != (ssize_t)sizeof block) return fail("write");
                continue;
            }
            size_t have = 0;
            while (have < sizeof got) {
                ssize_t n = read(fd, (char *)got + have, sizeof got - have);
                if (n < 0) return fail("read");
                if (n == 0) { fprintf(stderr, "zh: pattern ends at %ld MiB + %zu\n", m, have); return 1; }
                have += n;
            }
            if (memcmp(block, got, sizeof got)) { fprintf(stderr, "zh: pattern differs in MiB %ld\n", m); return 1; }
        }
        if (!writing && read(fd, got, 1) != 0) { fprintf(stderr, "zh: pattern file is longer\n"); return 1; }
        if (writing && fsync(fd)) return fail("fsync");
        return close(fd) ? fail("close") : 0;
    }
    fprintf(stderr, "zh: unknown command\n");
    return 2;
}
