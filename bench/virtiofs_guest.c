/* The guest side of bench/virtiofs.py (compiled with gcc -static, run inside the guest).
 *
 *   zb DIR LABEL N MIB FILES [lat|seq|meta]
 *
 * Prints "BENCH LABEL metric value" lines: 4 KiB QD1 write and read latency (median, us),
 * 1 MiB sequential write and read throughput (MB/s), create/stat/unlink rates (per second),
 * and whether O_DIRECT was used for the 4 KiB and sequential reads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp);
    return v[n / 2];
}

static int open_direct(const char *path, int flags, int *direct) {
    int fd = open(path, flags | O_DIRECT, 0644);
    *direct = fd >= 0;
    if (fd < 0) fd = open(path, flags, 0644);
    return fd;
}

static void drop_caches(void) {
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    sync();
    if (fd >= 0) {
        if (write(fd, "3", 1) != 1) perror("drop_caches");
        close(fd);
    }
}

static void die(const char *what) {
    fprintf(stderr, "zb: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: zb DIR LABEL N MIB FILES [lat|seq|meta]\n");
        return 2;
    }
    const char *dir = argv[1], *label = argv[2], *only = argc > 6 ? argv[6] : NULL;
    int lat_on = !only || !strcmp(only, "lat"), seq_on = !only || !strcmp(only, "seq"),
        meta_on = !only || !strcmp(only, "meta");
    int n = atoi(argv[3]), mib = atoi(argv[4]), files = atoi(argv[5]);
    char path[4096];
    char *buf;
    double *lat = malloc(n * sizeof *lat);
    if (posix_memalign((void **)&buf, 4096, 1 << 20)) die("memalign");
    memset(buf, 0xab, 1 << 20);

    int direct, fd;
    double t;
    if (lat_on) {
        snprintf(path, sizeof path, "%s/lat", dir);
        fd = open_direct(path, O_RDWR | O_CREAT, &direct);
        if (fd < 0) die("open lat");
        for (int i = 0; i < 256; i++)
            if (pwrite(fd, buf, 4096, (off_t)i * 4096) != 4096) die("prefill");
        for (int i = 0; i < n; i++) {
            double t = now();
            if (pwrite(fd, buf, 4096, (off_t)(i % 256) * 4096) != 4096) die("pwrite");
            lat[i] = (now() - t) * 1e6;
        }
        printf("BENCH %s write4k_us %.1f\n", label, median(lat, n));
        for (int i = 0; i < n; i++) {
            double t = now();
            if (pread(fd, buf, 4096, (off_t)(i % 256) * 4096) != 4096) die("pread");
            lat[i] = (now() - t) * 1e6;
        }
        printf("BENCH %s read4k_us %.1f\n", label, median(lat, n));
        printf("BENCH %s direct %d\n", label, direct);
        close(fd);

    }
    if (seq_on) {
        snprintf(path, sizeof path, "%s/seq", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) die("open seq");
        t = now();
        for (int i = 0; i < mib; i++)
            if (write(fd, buf, 1 << 20) != 1 << 20) die("write seq");
        if (fsync(fd)) die("fsync");
        printf("BENCH %s seqwrite_MBps %.1f\n", label, mib / (now() - t) * 1.048576);
        close(fd);
        drop_caches();
        fd = open_direct(path, O_RDONLY, &direct);
        if (fd < 0) die("open seq");
        t = now();
        for (int i = 0; i < mib; i++)
            if (read(fd, buf, 1 << 20) != 1 << 20) die("read seq");
        printf("BENCH %s seqread_MBps %.1f\n", label, mib / (now() - t) * 1.048576);
        close(fd);

    }
    if (meta_on) {
        snprintf(path, sizeof path, "%s/many", dir);
        mkdir(path, 0755);
        t = now();
        for (int i = 0; i < files; i++) {
            snprintf(path, sizeof path, "%s/many/f%d", dir, i);
            int f = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (f < 0) die("create");
            close(f);
        }
        printf("BENCH %s create_per_s %.0f\n", label, files / (now() - t));
        drop_caches();  /* so stat asks the server, not the guest's attribute cache */
        struct stat st;
        t = now();
        for (int i = 0; i < files; i++) {
            snprintf(path, sizeof path, "%s/many/f%d", dir, i);
            if (stat(path, &st)) die("stat");
        }
        printf("BENCH %s stat_per_s %.0f\n", label, files / (now() - t));
        t = now();
        for (int i = 0; i < files; i++) {
            snprintf(path, sizeof path, "%s/many/f%d", dir, i);
            if (unlink(path)) die("unlink");
        }
        printf("BENCH %s unlink_per_s %.0f\n", label, files / (now() - t));
    }
    return 0;
}
