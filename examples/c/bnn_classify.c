/*
 * bnn_classify.c -- classify a set of IDX images with a .bnn model and
 * report accuracy, latency and throughput.
 *
 *     bnn_classify MODEL.bnn IMAGES.idx [LABELS.idx] [--threads N] [--batch B]
 *
 * IMAGES is an IDX file of uint8 images: 3 dimensions [N, H, W] for a
 * model with one input channel, or 4 dimensions [N, H, W, C].  LABELS, if
 * given, is an IDX file of N uint8 labels.  Both may be gzip-compressed
 * when the program is built with zlib (BNN_EXAMPLES_HAVE_ZLIB).
 *
 * Printed: the model's shape and size, the accuracy (with labels), the
 * latency of one image (median of single-image runs over the first images,
 * up to 1000 runs or 2 s) and the throughput at batch B (default 100) over
 * the whole set.  Only the model (by bnn_model_open_file), the workspace
 * and the input/output buffers are allocated.
 *
 * Exit codes: 0 success, 1 a file is unreadable or invalid or a run
 * failed, 2 bad command line.
 */
#define _POSIX_C_SOURCE 200809L

#include <bnn.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#ifdef BNN_EXAMPLES_HAVE_ZLIB
#include <zlib.h>
#endif

#define LATENCY_MAX_RUNS 1000
#define LATENCY_MAX_SECONDS 2.0
#define THROUGHPUT_MIN_SECONDS 0.5
#define IDX_UBYTE 0x08
/* Refuse absurd headers before allocating: 16 GiB of images. */
#define IDX_MAX_BYTES (UINT64_C(1) << 34)

static const char *prog = "bnn_classify";

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Input files: raw or gzip-compressed                                 */
/* ------------------------------------------------------------------ */

typedef struct input_file {
    const char *path;
    FILE *raw;          /* an uncompressed file, or NULL            */
    int64_t raw_bytes;  /* its size, -1 when compressed             */
#ifdef BNN_EXAMPLES_HAVE_ZLIB
    gzFile gz;          /* a gzip-compressed file, or NULL          */
#endif
} input_file;

/* Opens `path`; a gzip file (magic 1f 8b) is read through zlib, or
 * refused with advice when zlib was not available at build time. */
static int input_open(input_file *in, const char *path)
{
    unsigned char magic[2] = {0, 0};
    size_t got;
    memset(in, 0, sizeof *in);
    in->path = path;
    in->raw_bytes = -1;
    in->raw = fopen(path, "rb");
    if (in->raw == NULL) {
        fprintf(stderr, "%s: cannot open %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    got = fread(magic, 1, 2, in->raw);
    if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        fclose(in->raw);
        in->raw = NULL;
#ifdef BNN_EXAMPLES_HAVE_ZLIB
        in->gz = gzopen(path, "rb");
        if (in->gz == NULL) {
            fprintf(stderr, "%s: cannot open %s: %s\n", prog, path,
                    errno ? strerror(errno) : "out of memory");
            return -1;
        }
        return 0;
#else
        fprintf(stderr,
                "%s: %s is gzip-compressed, but this bnn_classify was built without zlib;\n"
                "  decompress it first (gunzip -k %s) and pass the uncompressed file,\n"
                "  or rebuild with zlib installed (CMake finds it with find_package(ZLIB))\n",
                prog, path, path);
        return -1;
#endif
    }
    if (fseeko(in->raw, 0, SEEK_END) != 0 || (in->raw_bytes = (int64_t)ftello(in->raw)) < 0 ||
        fseeko(in->raw, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: cannot determine the size of %s: %s\n", prog, path,
                strerror(errno));
        fclose(in->raw);
        in->raw = NULL;
        return -1;
    }
    return 0;
}

/* Reads up to n bytes; returns how many were read, or -1 on a read error
 * (reported). */
static int64_t input_read(input_file *in, void *buf, uint64_t n)
{
    uint64_t done = 0;
    unsigned char *p = (unsigned char *)buf;
    if (in->raw != NULL) {
        done = fread(p, 1, (size_t)n, in->raw);
        if (done < n && ferror(in->raw)) {
            fprintf(stderr, "%s: error reading %s: %s\n", prog, in->path, strerror(errno));
            return -1;
        }
        return (int64_t)done;
    }
#ifdef BNN_EXAMPLES_HAVE_ZLIB
    while (done < n) {
        uint64_t left = n - done;
        unsigned chunk = left > (1u << 30) ? (1u << 30) : (unsigned)left;
        int r = gzread(in->gz, p + done, chunk);
        if (r < 0) {
            int code;
            const char *msg = gzerror(in->gz, &code);
            /* zlib's message starts with the path */
            if (code == Z_ERRNO)
                fprintf(stderr, "%s: error reading %s: %s\n", prog, in->path, strerror(errno));
            else
                fprintf(stderr, "%s: error decompressing %s\n", prog, msg);
            return -1;
        }
        if (r == 0) break;
        done += (uint64_t)r;
    }
#endif
    return (int64_t)done;
}

static void input_close(input_file *in)
{
    if (in->raw != NULL) fclose(in->raw);
    in->raw = NULL;
#ifdef BNN_EXAMPLES_HAVE_ZLIB
    if (in->gz != NULL) gzclose(in->gz);
    in->gz = NULL;
#endif
}

/* ------------------------------------------------------------------ */
/* IDX files                                                           */
/* ------------------------------------------------------------------ */

/* An IDX file: 2 zero bytes, the element type (0x08 = uint8), the number
 * of dimensions, the dimensions as big-endian u32, then the elements in
 * C order. */
typedef struct idx_array {
    int ndims;
    uint32_t dims[4];
    uint64_t count;      /* product of dims: elements = bytes */
    uint8_t *data;       /* malloc'd                          */
} idx_array;

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void idx_free(idx_array *a)
{
    free(a->data);
    a->data = NULL;
}

/* Reads an IDX file of uint8 elements with min_dims..max_dims
 * dimensions; what names the contents in messages. */
static int idx_read(const char *path, const char *what, int min_dims, int max_dims,
                    idx_array *a)
{
    input_file in;
    unsigned char head[4 + 4 * 4];
    int64_t got;
    uint64_t header_bytes;
    int i;
    unsigned char extra;

    memset(a, 0, sizeof *a);
    if (input_open(&in, path) != 0) return -1;
    got = input_read(&in, head, 4);
    if (got < 0) goto fail;
    if (got < 4 || head[0] != 0 || head[1] != 0) {
        fprintf(stderr, "%s: %s is not an IDX file (it must start with two zero bytes, "
                "the element type and the number of dimensions)\n", prog, path);
        goto fail;
    }
    if (head[2] != IDX_UBYTE) {
        fprintf(stderr, "%s: %s: the elements have IDX type 0x%02x; %s must be unsigned "
                "bytes (type 0x08)\n", prog, path, head[2], what);
        goto fail;
    }
    a->ndims = head[3];
    if (a->ndims < min_dims || a->ndims > max_dims) {
        const char *s = a->ndims == 1 ? "" : "s";
        if (min_dims == max_dims)
            fprintf(stderr, "%s: %s has %d dimension%s; %s need %d\n", prog, path, a->ndims,
                    s, what, min_dims);
        else
            fprintf(stderr, "%s: %s has %d dimension%s; %s need %d to %d\n", prog, path,
                    a->ndims, s, what, min_dims, max_dims);
        goto fail;
    }
    got = input_read(&in, head + 4, 4 * (uint64_t)a->ndims);
    if (got < 0) goto fail;
    if (got < 4 * a->ndims) {
        fprintf(stderr, "%s: %s is truncated inside its IDX header\n", prog, path);
        goto fail;
    }
    a->count = 1;
    for (i = 0; i < a->ndims; i++) {
        a->dims[i] = be32(head + 4 + 4 * i);
        if (a->dims[i] == 0) {
            fprintf(stderr, "%s: %s: dimension %d of the IDX header is 0; there are no %s\n",
                    prog, path, i, what);
            goto fail;
        }
        if (a->dims[i] > IDX_MAX_BYTES / a->count) {
            fprintf(stderr, "%s: %s: the header describes more than %" PRIu64 " bytes of "
                    "%s; refusing\n", prog, path, (uint64_t)IDX_MAX_BYTES, what);
            goto fail;
        }
        a->count *= a->dims[i];
    }
    header_bytes = 4 + 4 * (uint64_t)a->ndims;
    if (in.raw_bytes >= 0 && (uint64_t)in.raw_bytes != header_bytes + a->count) {
        fprintf(stderr, "%s: %s is %" PRId64 " bytes, but its IDX header describes %" PRIu64
                " (%" PRIu64 " bytes of header + %" PRIu64 " elements)%s\n", prog, path,
                in.raw_bytes, header_bytes + a->count, header_bytes, a->count,
                (uint64_t)in.raw_bytes < header_bytes + a->count ? ": truncated" : "");
        goto fail;
    }
    a->data = (uint8_t *)malloc((size_t)a->count);
    if (a->data == NULL) {
        fprintf(stderr, "%s: out of memory for %" PRIu64 " bytes of %s\n", prog, a->count,
                what);
        goto fail;
    }
    got = input_read(&in, a->data, a->count);
    if (got < 0) goto fail;
    if ((uint64_t)got != a->count) {
        fprintf(stderr, "%s: %s is truncated: its header describes %" PRIu64
                " elements, the data ends after %" PRId64 "\n", prog, path, a->count, got);
        goto fail;
    }
    got = input_read(&in, &extra, 1);   /* compressed files: trailing data */
    if (got != 0) {
        if (got > 0)
            fprintf(stderr, "%s: %s holds more data than its IDX header describes\n", prog,
                    path);
        goto fail;
    }
    input_close(&in);
    return 0;
fail:
    input_close(&in);
    idx_free(a);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Command line                                                        */
/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s MODEL.bnn IMAGES.idx [LABELS.idx] [--threads N] [--batch B]\n"
            "\n"
            "  MODEL.bnn   a model written by `pybnn export`\n"
            "  IMAGES.idx  uint8 images, IDX [N, H, W] (one channel) or [N, H, W, C]\n"
            "  LABELS.idx  uint8 labels, IDX [N] (optional: prints the accuracy)\n"
            "  --threads N threads for the kernels (default: the library's default)\n"
            "  --batch B   images per call for the throughput (default 100)\n"
            "\n"
            "Files may be gzip-compressed (.gz) when built with zlib%s.\n",
            prog,
#ifdef BNN_EXAMPLES_HAVE_ZLIB
            " (this build has it)"
#else
            " (this build does not)"
#endif
    );
}

static int parse_positive(const char *opt, const char *text, long max, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "%s: %s needs a whole number from 1 to %ld, got '%s'\n", prog, opt,
                max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *paths[3] = {NULL, NULL, NULL};
    int npaths = 0, i, rc = 1;
    long threads = 0, batch = 100;
    bnn_model *model = NULL;
    bnn_model_info info;
    bnn_status st;
    idx_array images, labels;
    uint64_t image_bytes;
    int64_t n, done, k;
    size_t ws_bytes = 0, ws_one = 0;
    void *workspace = NULL;
    int32_t *classes = NULL;
    static double lat[LATENCY_MAX_RUNS];
    int runs;
    double t0, t, elapsed;
    long passes;

    memset(&images, 0, sizeof images);
    memset(&labels, 0, sizeof labels);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--threads") == 0 || strcmp(argv[i], "--batch") == 0) {
            int is_threads = strcmp(argv[i], "--threads") == 0;
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: %s needs a value\n", prog, argv[i]);
                return 2;
            }
            if (parse_positive(argv[i], argv[i + 1], is_threads ? 256 : 1L << 20,
                               is_threads ? &threads : &batch) != 0)
                return 2;
            i++;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "%s: unknown option %s\n", prog, argv[i]);
            usage(stderr);
            return 2;
        } else if (npaths < 3) {
            paths[npaths++] = argv[i];
        } else {
            fprintf(stderr, "%s: too many arguments (%s)\n", prog, argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (npaths < 2) {
        usage(stderr);
        return 2;
    }
    if (threads > 0 && (st = bnn_set_num_threads((int)threads)) != BNN_OK) {
        fprintf(stderr, "%s: cannot use %ld threads: %s\n", prog, threads,
                bnn_status_string(st));
        return 2;
    }

    /* The model: the loader checks the whole file. */
    st = bnn_model_open_file(paths[0], &model);
    if (st != BNN_OK) {
        fprintf(stderr, "%s: cannot load the model %s: %s\n", prog, paths[0],
                bnn_status_string(st));
        return 1;
    }
    if ((st = bnn_model_get_info(model, &info)) != BNN_OK) {
        fprintf(stderr, "%s: bnn_model_get_info: %s\n", prog, bnn_status_string(st));
        goto done;
    }
    printf("libbnn %s, kernels %s, %d thread%s\n", bnn_version_string(), bnn_isa_name(),
           bnn_get_num_threads(), bnn_get_num_threads() == 1 ? "" : "s");
    printf("model %s\n", paths[0]);
    printf("  input           %" PRId64 "x%" PRId64 "x%" PRId64 " uint8 (HxWxC)\n", info.in_h,
           info.in_w, info.in_c);
    printf("  classes         %" PRId64 "\n", info.classes);
    printf("  layers          %" PRId64 "\n", info.layers);
    printf("  file bytes      %" PRId64 "\n", info.file_bytes);
    printf("  binary weights  %" PRId64 " (%.1f KiB as bits; %.1f KiB as float32)\n",
           info.binary_weights, (double)info.binary_weights / 8192.0,
           (double)info.binary_weights / 256.0);

    /* The images, checked against the model's input. */
    if (idx_read(paths[1], "images", 3, 4, &images) != 0) goto done;
    if (images.ndims == 3 && info.in_c != 1) {
        fprintf(stderr, "%s: %s holds one-channel images [N, H, W]; the model takes %" PRId64
                " channels: write the file as [N, H, W, C]\n", prog, paths[1], info.in_c);
        goto done;
    }
    {
        uint32_t c = images.ndims == 4 ? images.dims[3] : 1;
        if (images.dims[1] != info.in_h || images.dims[2] != info.in_w || c != info.in_c) {
            fprintf(stderr, "%s: %s holds %" PRIu32 "x%" PRIu32 "x%" PRIu32 " images (HxWxC); "
                    "the model takes %" PRId64 "x%" PRId64 "x%" PRId64 "\n", prog, paths[1],
                    images.dims[1], images.dims[2], c, info.in_h, info.in_w, info.in_c);
            goto done;
        }
    }
    n = images.dims[0];
    image_bytes = images.count / (uint64_t)n;
    printf("images %s: %" PRId64 " of %" PRId64 "x%" PRId64 "x%" PRId64 "\n", paths[1], n,
           info.in_h, info.in_w, info.in_c);

    if (paths[2] != NULL) {
        if (idx_read(paths[2], "labels", 1, 1, &labels) != 0) goto done;
        if ((int64_t)labels.dims[0] != n) {
            fprintf(stderr, "%s: %s holds %" PRIu32 " labels for %" PRId64 " images\n", prog,
                    paths[2], labels.dims[0], n);
            goto done;
        }
        for (k = 0; k < n; k++) {
            if ((int64_t)labels.data[k] >= info.classes) {
                fprintf(stderr, "%s: %s: label %d of image %" PRId64 " is not one of the "
                        "model's %" PRId64 " classes (0..%" PRId64 ")\n", prog, paths[2],
                        labels.data[k], k, info.classes, info.classes - 1);
                goto done;
            }
        }
    }

    /* Scratch memory for the largest batch, and for single images. */
    if (batch > n) batch = (long)n;
    if ((st = bnn_model_workspace_size(model, batch, 0, &ws_bytes)) != BNN_OK ||
        (st = bnn_model_workspace_size(model, 1, 0, &ws_one)) != BNN_OK) {
        fprintf(stderr, "%s: bnn_model_workspace_size: %s\n", prog, bnn_status_string(st));
        goto done;
    }
    if (ws_one > ws_bytes) ws_bytes = ws_one;
    workspace = malloc(ws_bytes ? ws_bytes : 1);
    classes = (int32_t *)malloc((size_t)n * sizeof *classes);
    if (workspace == NULL || classes == NULL) {
        fprintf(stderr, "%s: out of memory (workspace %zu bytes)\n", prog, ws_bytes);
        goto done;
    }
    printf("workspace %zu bytes (batch %ld)\n", ws_bytes, batch);

    /* Classes of the whole set, batch by batch; accuracy. */
    for (done = 0; done < n; done += batch) {
        int64_t b = n - done < batch ? n - done : batch;
        st = bnn_model_run(model, b, images.data + (uint64_t)done * image_bytes, NULL,
                           classes + done, workspace, ws_bytes);
        if (st != BNN_OK) {
            fprintf(stderr, "%s: bnn_model_run: %s\n", prog, bnn_status_string(st));
            goto done;
        }
    }
    if (labels.data != NULL) {
        int64_t right = 0;
        for (k = 0; k < n; k++) right += classes[k] == (int32_t)labels.data[k];
        printf("accuracy: %" PRId64 "/%" PRId64 " = %.2f%%\n", right, n,
               100.0 * (double)right / (double)n);
    } else {
        printf("accuracy: no labels given\n");
    }

    /* Latency: one image per call, cycling over the first images; each
     * result must equal the batched one. */
    t0 = now_seconds();
    for (runs = 0; runs < LATENCY_MAX_RUNS; runs++) {
        k = runs % n;
        int32_t cls = -1;
        t = now_seconds();
        st = bnn_model_run(model, 1, images.data + (uint64_t)k * image_bytes, NULL, &cls,
                           workspace, ws_bytes);
        lat[runs] = now_seconds() - t;
        if (st != BNN_OK) {
            fprintf(stderr, "%s: bnn_model_run: %s\n", prog, bnn_status_string(st));
            goto done;
        }
        if (cls != classes[k]) {
            fprintf(stderr, "%s: image %" PRId64 " gives class %d alone but %d in a batch\n",
                    prog, k, (int)cls, (int)classes[k]);
            goto done;
        }
        if (now_seconds() - t0 > LATENCY_MAX_SECONDS) {
            runs++;
            break;
        }
    }
    qsort(lat, (size_t)runs, sizeof lat[0], cmp_double);
    printf("latency (batch 1): median %.2f us, min %.2f us over %d runs\n",
           1e6 * (runs % 2 ? lat[runs / 2] : 0.5 * (lat[runs / 2 - 1] + lat[runs / 2])),
           1e6 * lat[0], runs);

    /* Throughput: whole passes over the set at batch B, repeated until
     * THROUGHPUT_MIN_SECONDS have passed. */
    passes = 0;
    t0 = now_seconds();
    do {
        for (done = 0; done < n; done += batch) {
            int64_t b = n - done < batch ? n - done : batch;
            st = bnn_model_run(model, b, images.data + (uint64_t)done * image_bytes, NULL,
                               classes + done, workspace, ws_bytes);
            if (st != BNN_OK) {
                fprintf(stderr, "%s: bnn_model_run: %s\n", prog, bnn_status_string(st));
                goto done;
            }
        }
        passes++;
        elapsed = now_seconds() - t0;
    } while (elapsed < THROUGHPUT_MIN_SECONDS);
    printf("throughput (batch %ld): %.0f images/s (%ld pass%s over %" PRId64
           " images in %.3f s)\n", batch, (double)passes * (double)n / elapsed, passes,
           passes == 1 ? "" : "es", n, elapsed);
    rc = 0;

done:
    free(classes);
    free(workspace);
    idx_free(&labels);
    idx_free(&images);
    bnn_model_free(model);
    return rc;
}
