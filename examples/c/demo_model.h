/* The .bnn model demo_model (13760 bytes; docs/model-format.md), generated from golden.bnn
 * by examples/c/bin2c.py.  Load it without malloc or a file system:
 *
 *     bnn_model_arena_size(demo_model, demo_model_size, &need);
 *     bnn_model_init(arena, arena_bytes, demo_model, demo_model_size, &model);
 *
 * The array is 64-byte aligned, so the weights are read where they are. */
#ifndef DEMO_MODEL_H
#define DEMO_MODEL_H

#ifdef __cplusplus
extern "C" {
#endif

extern const unsigned char demo_model[13760];
extern const unsigned long demo_model_size;

#ifdef __cplusplus
}
#endif

#endif /* DEMO_MODEL_H */
