/*
 * no_malloc.c -- proof for the test example_embedded_no_malloc that the
 * embedded example and the library code it runs never allocate.
 *
 * The test executable is linked with -Wl,--wrap=malloc (and calloc,
 * realloc, free): every call of those functions from the program and
 * from the static libbnn comes here and stops the program.  Calls made
 * inside the C library itself (stdio buffers) are not redirected.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static void forbidden(const char *what)
{
    fprintf(stderr, "no_malloc: %s was called\n", what);
    abort();
}

void *__wrap_malloc(size_t n)
{
    (void)n;
    forbidden("malloc");
    return NULL;
}

void *__wrap_calloc(size_t n, size_t size)
{
    (void)n;
    (void)size;
    forbidden("calloc");
    return NULL;
}

void *__wrap_realloc(void *p, size_t n)
{
    (void)p;
    (void)n;
    forbidden("realloc");
    return NULL;
}

void __wrap_free(void *p)
{
    if (p != NULL) forbidden("free");
}
