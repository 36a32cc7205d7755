/*
 * model_internal.h -- the loaded model, shared by the checker (check.c),
 * the loader (load.c) and the runner (run.c).
 */
#ifndef BNN_MODEL_INTERNAL_H
#define BNN_MODEL_INTERNAL_H

#include "core/bnn_engine.h"
#include "model/format.h"

#define BNN_MODEL_OBJ_MAGIC 0x626e6e6d6f64656cULL   /* marks a live bnn_model */

/* what an activation is between layers */
enum { BNN_ACT_IMAGE, BNN_ACT_SPATIAL, BNN_ACT_FLAT };

typedef struct bnn_layer_rt {
    int32_t type, flags;
    uint32_t prm[BNN_MODEL_MAX_PARAMS]; /* as in the file                   */
    int64_t file_offset, record_bytes;
    int64_t k, m;                    /* dense: inputs, outputs            */
    bnn_conv2d_params cp;            /* conv geometry (n set per run)     */
    bnn_pool2d_params pp;            /* pool geometry (n set per run)     */
    int64_t in_h, in_w, in_c;        /* input shape of one image          */
    int64_t out_h, out_w, out_c;     /* output shape (dense: 1, 1, m)     */
    const uint64_t *w;
    int64_t ldw;
    const int32_t *thresh;
    const uint8_t *flip;
    const float *scale, *offset;
    int32_t *corr;                   /* conv zero-padding correction      */
    void *prep;                      /* first layer: prepared u8 weights  */
} bnn_layer_rt;

struct bnn_model {
    uint64_t magic;
    void *block;                     /* malloc'd block holding the model  */
    void *file_copy;                 /* malloc'd file bytes it reads      */
    bnn_model_info info;
    int64_t n_layers;
    bnn_layer_rt *layers;
    int64_t act_words;               /* largest activation, words/image   */
};

typedef struct bnn_parse_out {
    bnn_model_info info;
    int64_t n_layers;
    int64_t corr_bytes;              /* int32 corrections of zero-padded convs,
                                        and the prepared first layer       */
    int64_t act_words;
} bnn_parse_out;

/* The one strict pass over a file (check.c).  With `layers` non-NULL it
 * also fills the layer table (corr pointers from corr_mem, which holds
 * po->corr_bytes of a previous pass).  report may be NULL; when not, it
 * is filled on every outcome. */
BNN_INTERNAL bnn_status bnn_model_parse(const uint8_t *d, size_t bytes, bnn_parse_out *po,
                                        bnn_layer_rt *layers, uint8_t *corr_mem,
                                        bnn_model_report *report);

#endif /* BNN_MODEL_INTERNAL_H */
