/*
 * runner.cuh -- a loaded .bnn model run layer by layer on the kernels of
 * kernels.cuh, the layer logic of bnn_model_run (model/run.c) written once
 * over a launcher: cuda.cu's launches the GPU kernels, the C tests' runs
 * the emulated blocks on host memory, so the runner is checked against
 * bnn_model_run without a GPU.
 *
 * A launcher L has gemm(GemmArgs), conv(ConvArgs), pool(PoolArgs, words),
 * u8(U8Args, words), flatten(FlatArgs, words) and argmax(ArgmaxArgs, n),
 * each returning a bnn_status.
 */
#ifndef BNN_CUDA_RUNNER_CUH
#define BNN_CUDA_RUNNER_CUH

#include "kernels.cuh"

extern "C" {
#include "model/model_internal.h"
}

namespace bnn_cuda {

/* Where the kernels read a layer's arrays (device copies for the GPU, the
 * model's own for the emulator). */
struct LayerArrays {
    const uint64_t *w;
    const int32_t *thresh;
    const uint8_t *flip;
    const float *scale, *offset;
};

/* The epilogue of layer L: float scores (the last layer) or the sign bits
 * of the next layer's input, written to c with row stride ldc. */
inline GemmArgs layer_epilogue(const bnn_layer_rt *L, const LayerArrays *A, void *c, int64_t ldc)
{
    GemmArgs e;
    memset(&e, 0, sizeof e);
    if (L->flags & BNN_RECORD_SCORES) {
        e.epi = EPI_FLOAT;
        e.scale = A->scale;
        e.offset = A->offset;
    } else {
        e.epi = EPI_BITS;
        e.thresh = A->thresh;
        e.flip = A->flip;
    }
    e.c = c;
    e.ldc = ldc;
    return e;
}

/* n images x (uint8 [n][in_h][in_w][in_c]) through the model: scores
 * [n][classes] and, if classes_out is not NULL, their classes.  buf0 and
 * buf1 hold model->act_words * n words each. */
template <class L>
bnn_status run_model(L &l, const bnn_model *model, const LayerArrays *arr, int64_t n,
                     const uint8_t *x, uint64_t *buf0, uint64_t *buf1, float *scores,
                     int32_t *classes_out)
{
    uint64_t *buf[2] = {buf0, buf1};
    const uint64_t *cur = NULL;
    int which = 0;
    bnn_status st = BNN_OK;
    for (int64_t li = 0; li < model->n_layers; li++) {
        const bnn_layer_rt *Ly = &model->layers[li];
        const LayerArrays *A = &arr[li];
        const int sc = (Ly->flags & BNN_RECORD_SCORES) != 0;
        uint64_t *out = buf[which];
        switch (Ly->type) {
        case BNN_RECORD_DENSE: {
            void *o = sc ? (void *)scores : (void *)out;
            const int64_t ldc = sc ? Ly->m : bnn_words(Ly->m);
            if (Ly->flags & BNN_RECORD_INPUT_U8) {
                U8Args u;
                memset(&u, 0, sizeof u);
                u.n = n; u.m = Ly->m; u.k = Ly->k; u.x = x; u.ldx = Ly->k;
                u.w = A->w; u.ldw = Ly->ldw;
                u.out = layer_epilogue(Ly, A, o, ldc);
                st = l.u8(u, n * bnn_words(Ly->m));
            } else {
                GemmArgs g = layer_epilogue(Ly, A, o, ldc);
                g.n = n; g.m = Ly->m; g.k = Ly->k; g.kw = bnn_words(Ly->k);
                g.a = cur; g.lda = bnn_words(Ly->k); g.w = A->w; g.ldw = Ly->ldw;
                st = l.gemm(g);
            }
            break;
        }
        case BNN_RECORD_CONV: {
            const bnn_conv2d_params *p = &Ly->cp;
            const int64_t oh = Ly->out_h, ow = Ly->out_w, rows = n * oh * ow;
            if (Ly->flags & BNN_RECORD_INPUT_U8) {
                U8Args u;
                memset(&u, 0, sizeof u);
                u.n = rows; u.m = p->o; u.k = p->kh * p->kw * p->c; u.x = x;
                u.w = A->w; u.ldw = Ly->ldw; u.conv = 1;
                u.h = p->h; u.wd = p->w; u.c = p->c; u.cw = bnn_words(p->c);
                u.kh = p->kh; u.kw = p->kw; u.oh = oh; u.ow = ow;
                u.sh = p->stride_h; u.sw = p->stride_w; u.dh = p->dilation_h;
                u.dw = p->dilation_w; u.pt = p->pad_top; u.pl = p->pad_left;
                u.pad_byte = p->pad_byte;
                u.out = layer_epilogue(Ly, A, out, bnn_words(p->o));
                st = l.u8(u, rows * bnn_words(p->o));
            } else {
                ConvArgs g;
                memset(&g, 0, sizeof g);
                g.n = n; g.h = p->h; g.w = p->w; g.c = p->c; g.cw = bnn_words(p->c);
                g.o = p->o; g.kh = p->kh; g.kw = p->kw; g.oh = oh; g.ow = ow;
                g.sh = p->stride_h; g.sw = p->stride_w; g.dh = p->dilation_h;
                g.dw = p->dilation_w; g.pt = p->pad_top; g.pl = p->pad_left;
                g.pad_value = p->pad_value; g.x = cur; g.wt = A->w;
                g.out = layer_epilogue(Ly, A, out, bnn_words(p->o));
                g.out.n = rows; g.out.m = p->o; g.out.k = p->kh * p->kw * p->c;
                st = l.conv(g);
            }
            break;
        }
        case BNN_RECORD_MAXPOOL: {
            const bnn_pool2d_params *p = &Ly->pp;
            PoolArgs g;
            memset(&g, 0, sizeof g);
            g.n = n; g.h = p->h; g.w = p->w; g.cw = bnn_words(p->c);
            g.oh = Ly->out_h; g.ow = Ly->out_w; g.kh = p->kh; g.kw = p->kw;
            g.sh = p->stride_h; g.sw = p->stride_w; g.pt = p->pad_top; g.pl = p->pad_left;
            g.x = cur; g.flip = A->flip; g.c = p->c; g.out = out;
            st = l.pool(g, n * g.oh * g.ow * g.cw);
            break;
        }
        default: /* BNN_RECORD_FLATTEN */
            if (Ly->in_c % 64 == 0) {
                out = (uint64_t *)cur;       /* the same words in the same order */
                which ^= 1;
            } else {
                FlatArgs g;
                g.n = n; g.hw = Ly->in_h * Ly->in_w; g.c = Ly->in_c; g.cw = bnn_words(Ly->in_c);
                g.fw = bnn_words(g.hw * g.c); g.src = cur; g.dst = out;
                st = l.flatten(g, n * g.fw);
            }
            break;
        }
        if (st != BNN_OK) return st;
        cur = out;
        which ^= 1;
    }
    if (classes_out == NULL) return BNN_OK;
    const ArgmaxArgs am = {scores, model->info.classes, classes_out};
    return l.argmax(am, n);
}

} /* namespace bnn_cuda */

#endif /* BNN_CUDA_RUNNER_CUH */
