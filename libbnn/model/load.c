/*
 * load.c -- loading a checked .bnn file: into malloc'd memory
 * (bnn_model_open_memory/open_file) or a caller's arena (arena_size +
 * init), zero-copy when the bytes are 8-byte aligned.  Every path runs the
 * strict pass of check.c first (the same one bnn_model_check() runs), then
 * a second pass that fills the layer table.
 */
#include "model/model_internal.h"

#include <string.h>
#ifndef BNN_BAREMETAL
#  include <stdio.h>
#  include <stdlib.h>
#endif

/* ---- loading ------------------------------------------------------------ */

/* Bytes of model memory for a checked file: the struct, the layer table,
 * the corrections and (when the bytes are not 8-byte aligned) a copy of
 * the file; +64 so any arena alignment works. */
static int64_t model_bytes(const bnn_parse_out *po, int copy_file)
{
    return 64 + bnn_align64((int64_t)sizeof(bnn_model)) + bnn_align64(po->n_layers * (int64_t)sizeof(bnn_layer_rt))
           + po->corr_bytes + (copy_file ? bnn_align64(po->info.file_bytes) : 0);
}

static int aligned8(const void *p) { return ((uintptr_t)p & 7u) == 0; }

static bnn_status build(void *mem, size_t mem_bytes, const void *data, size_t bytes,
                        bnn_model **out)
{
    bnn_parse_out po;
    bnn_status st;
    int copy = !aligned8(data);
    uint8_t *base, *p;
    bnn_model *m;
    const uint8_t *file;
    if ((st = bnn_model_parse((const uint8_t *)data, bytes, &po, NULL, NULL, NULL)) != BNN_OK) return st;
    if ((uint64_t)mem_bytes < (uint64_t)model_bytes(&po, copy)) return BNN_ERR_INVALID;
    base = (uint8_t *)mem;
    p = base + ((64 - ((uintptr_t)base & 63)) & 63);
    m = (bnn_model *)p;
    memset(m, 0, sizeof *m);
    p += bnn_align64((int64_t)sizeof(bnn_model));
    m->layers = (bnn_layer_rt *)p;
    p += bnn_align64(po.n_layers * (int64_t)sizeof(bnn_layer_rt));
    {
        uint8_t *corr = p;
        p += po.corr_bytes;
        file = (const uint8_t *)data;
        if (copy) {
            memcpy(p, data, bytes);
            file = p;
        }
        if ((st = bnn_model_parse(file, bytes, &po, m->layers, corr, NULL)) != BNN_OK) return st;
    }
    m->magic = BNN_MODEL_OBJ_MAGIC;
    m->info = po.info;
    m->info.zero_copy = !copy;
    m->n_layers = po.n_layers;
    m->act_words = po.act_words;
    *out = m;
    return BNN_OK;
}

bnn_status bnn_model_arena_size(const void *data, size_t bytes, size_t *arena_bytes)
{
    bnn_parse_out po;
    bnn_status st;
    if (data == NULL || arena_bytes == NULL) return BNN_ERR_NULL;
    if ((st = bnn_model_parse((const uint8_t *)data, bytes, &po, NULL, NULL, NULL)) != BNN_OK) return st;
    *arena_bytes = (size_t)model_bytes(&po, !aligned8(data));
    return BNN_OK;
}

bnn_status bnn_model_init(void *arena, size_t arena_bytes, const void *data, size_t bytes,
                          bnn_model **model)
{
    if (model == NULL || data == NULL || arena == NULL) return BNN_ERR_NULL;
    return build(arena, arena_bytes, data, bytes, model);
}

#ifdef BNN_BAREMETAL
/* No heap and no files: a model lives in the caller's arena
 * (bnn_model_arena_size + bnn_model_init). */
bnn_status bnn_model_open_memory(const void *data, size_t bytes, bnn_model **model)
{
    (void)bytes;
    if (model == NULL || data == NULL) return BNN_ERR_NULL;
    return BNN_ERR_UNSUPPORTED;
}

bnn_status bnn_model_open_file(const char *path, bnn_model **model)
{
    if (path == NULL || model == NULL) return BNN_ERR_NULL;
    return BNN_ERR_UNSUPPORTED;
}

void bnn_model_free(bnn_model *model) { (void)model; }
#else
bnn_status bnn_model_open_memory(const void *data, size_t bytes, bnn_model **model)
{
    size_t need;
    void *mem;
    bnn_status st;
    if (model == NULL || data == NULL) return BNN_ERR_NULL;
    if ((st = bnn_model_arena_size(data, bytes, &need)) != BNN_OK) return st;
    if ((mem = malloc(need)) == NULL) return BNN_ERR_NOMEM;
    st = build(mem, need, data, bytes, model);
    if (st != BNN_OK) {
        free(mem);
        return st;
    }
    (*model)->block = mem;
    return BNN_OK;
}

bnn_status bnn_model_open_file(const char *path, bnn_model **model)
{
    FILE *f;
    long len;
    uint64_t *buf;
    size_t got;
    bnn_status st;
    if (path == NULL || model == NULL) return BNN_ERR_NULL;
    if ((f = fopen(path, "rb")) == NULL) return BNN_ERR_IO;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return BNN_ERR_IO;
    }
    if (len < BNN_MODEL_HEADER_BYTES) {
        fclose(f);
        return BNN_ERR_FORMAT;
    }
    /* a directory opens and can report any size (LONG_MAX on some file
     * systems) but cannot be read: read one byte before allocating */
    if (fgetc(f) == EOF || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return BNN_ERR_IO;
    }
    /* uint64_t storage: 8-byte aligned, so the model reads it in place */
    buf = (uint64_t *)malloc(((size_t)len + 7) / 8 * 8);
    if (buf == NULL) {
        fclose(f);
        return BNN_ERR_NOMEM;
    }
    got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    if (got != (size_t)len) {
        free(buf);
        return BNN_ERR_IO;
    }
    st = bnn_model_open_memory(buf, (size_t)len, model);
    if (st != BNN_OK) {
        free(buf);
        return st;
    }
    (*model)->file_copy = buf;
    return BNN_OK;
}

void bnn_model_free(bnn_model *model)
{
    void *block, *file;
    if (model == NULL || model->magic != BNN_MODEL_OBJ_MAGIC || model->block == NULL) return;
    block = model->block;
    file = model->file_copy;
    model->magic = 0;
    free(file);
    free(block);
}
#endif /* BNN_BAREMETAL */

bnn_status bnn_model_get_info(const bnn_model *model, bnn_model_info *info)
{
    if (model == NULL || info == NULL) return BNN_ERR_NULL;
    if (model->magic != BNN_MODEL_OBJ_MAGIC) return BNN_ERR_INVALID;
    *info = model->info;
    return BNN_OK;
}


bnn_status bnn_model_get_layer(const bnn_model *model, int64_t index, bnn_model_layer_info *out)
{
    const bnn_layer_rt *L;
    if (model == NULL || out == NULL) return BNN_ERR_NULL;
    if (model->magic != BNN_MODEL_OBJ_MAGIC) return BNN_ERR_INVALID;
    if (index < 0 || index >= model->n_layers) return BNN_ERR_SHAPE;
    L = &model->layers[index];
    memset(out, 0, sizeof *out);
    out->type = L->type;
    out->flags = L->flags;
    memcpy(out->params, L->prm, sizeof out->params);
    out->in_h = L->in_h; out->in_w = L->in_w; out->in_c = L->in_c;
    out->out_h = L->out_h; out->out_w = L->out_w; out->out_c = L->out_c;
    out->file_offset = L->file_offset;
    out->record_bytes = L->record_bytes;
    return BNN_OK;
}
