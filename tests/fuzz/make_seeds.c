/* Writes the binary seed files of tests/fuzz/corpus (safetensors files and small images), so they
 * can be remade and reviewed: `cmake --build BUILD --target fuzz_make_seeds` then
 * `BUILD/fuzz/fuzz_make_seeds tests/fuzz/corpus`. The text seeds (JSON) are written by hand. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <webp/encode.h>

#include "io/gguf.h"
#include "io/safetensors.h"

static const char *root;

static void save(const char *sub, const char *name, const void *data, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", root, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void st_seed(const char *name, int n, const char *const *names, const st_dtype *dt, const int *ndim,
                    const int64_t (*shapes)[3], const char *fmt) {
    static uint8_t bytes[4096];
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(i * 37 + 11);
    st_writer *w = st_writer_new();
    modes_error err = {0};
    for (int i = 0; i < n; i++)
        if (st_writer_add(w, names[i], dt[i], ndim[i], shapes[i], bytes, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
    if (fmt) st_writer_set_metadata(w, "format", fmt, &err);
    char path[1024];
    snprintf(path, sizeof path, "%s/safetensors/%s", root, name);
    if (st_writer_save(w, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    st_writer_free(w);
}

static void safetensors_seeds(void) {
    const char *n1[] = {"input_ids"};
    const st_dtype d1[] = {ST_I64};
    const int nd1[] = {2};
    const int64_t s1[][3] = {{1, 5}};
    st_seed("input_ids.safetensors", 1, n1, d1, nd1, s1, "pt");
    const char *n2[] = {"model.embed.weight", "model.norm.weight", "scalar", "empty", "flags"};
    const st_dtype d2[] = {ST_BF16, ST_F32, ST_F16, ST_I32, ST_BOOL};
    const int nd2[] = {2, 1, 0, 3, 1};
    const int64_t s2[][3] = {{4, 3}, {3}, {0}, {2, 0, 5}, {3}};
    st_seed("mixed.safetensors", 5, n2, d2, nd2, s2, NULL);
    /* Odd sizes first, so later tensors sit at unaligned offsets and are copied at open. */
    const char *n3[] = {"a", "b", "c", "d"};
    const st_dtype d3[] = {ST_U8, ST_F64, ST_I16, ST_I8};
    const int nd3[] = {1, 1, 2, 1};
    const int64_t s3[][3] = {{3}, {2}, {1, 3}, {1}};
    st_seed("unaligned.safetensors", 4, n3, d3, nd3, s3, "np");
    /* A hand-made header with a gap, trailing bytes and no padding. */
    const char hdr[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},\"__metadata__\":{\"k\":\"v\"}}";
    uint8_t buf[8 + sizeof hdr + 24] = {0};
    size_t h = sizeof hdr - 1;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(h >> (8 * i));
    memcpy(buf + 8, hdr, h);
    save("safetensors", "gap.safetensors", buf, 8 + h + 24);
}

/* ---- GGUF ---- */

static void gguf_save(gguf_writer *w, const char *name) {
    char path[1024];
    modes_error err = {0};
    snprintf(path, sizeof path, "%s/gguf/%s", root, name);
    if (gguf_writer_save(w, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    gguf_writer_free(w);
}

static void gguf_seeds(void) {
    static uint8_t bytes[512];
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(i * 37 + 11);
    modes_error err = {0};
    /* Metadata of every kind and tensors of four types, as a small model file has. */
    gguf_writer *w = gguf_writer_new();
    const int32_t sections[4] = {24, 20, 20, 0};
    const char *tokens[4] = {"a", "b", "\xc4\xa0" "c", "<|im_end|>"};
    const float scores[2] = {0.5f, -1.0f};
    const uint8_t u8 = 7;
    const double f64 = 0.25;
    const int64_t ne_w[2] = {4, 3}, ne_n[1] = {4}, ne_q8[2] = {32, 2}, ne_q4k[1] = {256};
    int rc = gguf_set_str(w, "general.architecture", "qwen3vlmoe", &err) ||
             gguf_set_u32(w, "qwen3vlmoe.block_count", 2, &err) || gguf_set_i32(w, "test.i32", -3, &err) ||
             gguf_set_u64(w, "test.u64", 1ull << 33, &err) || gguf_set_f32(w, "test.eps", 1e-6f, &err) ||
             gguf_set_bool(w, "test.flag", 1, &err) || gguf_set_value(w, "test.u8", GGUF_U8, &u8, &err) ||
             gguf_set_value(w, "test.f64", GGUF_F64, &f64, &err) ||
             gguf_set_array(w, "test.sections", GGUF_I32, sections, 4, &err) ||
             gguf_set_array(w, "tokenizer.ggml.tokens", GGUF_STRING, tokens, 4, &err) ||
             gguf_set_array(w, "test.scores", GGUF_F32, scores, 2, &err) ||
             gguf_add_tensor(w, "token_embd.weight", GGML_BF16, 2, ne_w, bytes, &err) ||
             gguf_add_tensor(w, "output_norm.weight", GGML_F32, 1, ne_n, bytes, &err) ||
             gguf_add_tensor(w, "blk.0.ffn_down_exps.weight", GGML_Q8_0, 2, ne_q8, bytes, &err) ||
             gguf_add_tensor(w, "blk.0.ffn_gate_exps.weight", GGML_Q4_K, 1, ne_q4k, bytes, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    gguf_save(w, "model.gguf");
    /* Another alignment, and a scalar tensor. */
    w = gguf_writer_new();
    rc = gguf_set_u32(w, "general.alignment", 8, &err) || gguf_set_str(w, "general.name", "x", &err) ||
         gguf_add_tensor(w, "a", GGML_F16, 1, ne_n, bytes, &err) || gguf_add_tensor(w, "s", GGML_F32, 0, NULL, bytes, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    gguf_save(w, "align8.gguf");
    /* Metadata only. */
    w = gguf_writer_new();
    if (gguf_set_str(w, "tokenizer.chat_template", "{{ messages }}", &err)) exit(1);
    gguf_save(w, "meta.gguf");
}

/* ---- images ---- */

typedef struct {
    uint8_t *p;
    size_t n;
} mem;

static void png_write_mem(png_structp png, png_bytep p, size_t n) {
    mem *m = png_get_io_ptr(png);
    m->p = realloc(m->p, m->n + n);
    memcpy(m->p + m->n, p, n);
    m->n += n;
}
static void png_flush_mem(png_structp png) { (void)png; }

static uint8_t sample(int x, int y, int c) { return (uint8_t)((x * 29 + y * 13 + c * 71) & 255); }

static void png_seed(const char *name, int w, int h, int color, int depth, int interlace) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    mem m = {0};
    png_set_write_fn(png, &m, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    int ch = color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_PALETTE ? 1
             : color == PNG_COLOR_TYPE_GRAY_ALPHA                         ? 2
             : color == PNG_COLOR_TYPE_RGB                                ? 3
                                                                          : 4;
    if (color == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[16];
        for (int i = 0; i < 16; i++) pal[i] = (png_color){(png_byte)(i * 16), (png_byte)(255 - i * 16), (png_byte)(i * 7)};
        png_set_PLTE(png, info, pal, 16);
        png_byte trns[4] = {0, 128, 255, 10};
        png_set_tRNS(png, info, trns, 4, NULL);
    }
    png_write_info(png, info);
    size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
    uint8_t *row = calloc(rowbytes, 1);
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < h; y++) {
            for (size_t i = 0; i < rowbytes; i++) row[i] = sample((int)i, y, 0);
            if (color == PNG_COLOR_TYPE_PALETTE && depth == 8)
                for (size_t i = 0; i < rowbytes; i++) row[i] &= 15;
            png_write_row(png, row);
        }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    save("image", name, m.p, m.n);
    free(m.p);
}

static void jpeg_seed(const char *name, int w, int h, int comps, J_COLOR_SPACE in, J_COLOR_SPACE stored, int prog) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    unsigned char *out = NULL;
    unsigned long outlen = 0;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &out, &outlen);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = comps;
    ci.in_color_space = in;
    jpeg_set_defaults(&ci);
    jpeg_set_colorspace(&ci, stored);
    jpeg_set_quality(&ci, 50, TRUE);
    if (prog) jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    uint8_t *row = malloc((size_t)w * comps);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w * comps; x++) row[x] = sample(x, y, 1);
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    save("image", name, out, outlen);
    free(out);
}

static void webp_seed(const char *name, int w, int h, int lossless, int alpha) {
    uint8_t *px = malloc((size_t)w * h * 4), *out = NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * 4; x++) px[(size_t)y * w * 4 + x] = sample(x, y, 2);
    size_t n = lossless ? (alpha ? WebPEncodeLosslessRGBA(px, w, h, w * 4, &out) : WebPEncodeLosslessRGB(px, w, h, w * 3, &out))
                        : (alpha ? WebPEncodeRGBA(px, w, h, w * 4, 40, &out) : WebPEncodeRGB(px, w, h, w * 3, 40, &out));
    save("image", name, out, n);
    WebPFree(out);
    free(px);
}

static void image_seeds(void) {
    png_seed("rgb8.png", 7, 5, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE);
    png_seed("rgba16_adam7.png", 9, 6, PNG_COLOR_TYPE_RGB_ALPHA, 16, PNG_INTERLACE_ADAM7);
    png_seed("grey1.png", 11, 3, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE);
    png_seed("grey16.png", 4, 4, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE);
    png_seed("greyalpha8.png", 5, 3, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_ADAM7);
    png_seed("palette4_trns.png", 6, 5, PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE);
    png_seed("rgb8_56x28.png", 56, 28, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE);
    jpeg_seed("baseline.jpg", 16, 9, 3, JCS_RGB, JCS_YCbCr, 0);
    jpeg_seed("progressive.jpg", 13, 10, 3, JCS_RGB, JCS_YCbCr, 1);
    jpeg_seed("grey.jpg", 8, 8, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, 0);
    jpeg_seed("cmyk.jpg", 9, 7, 4, JCS_CMYK, JCS_CMYK, 0);
    jpeg_seed("ycck.jpg", 8, 5, 4, JCS_CMYK, JCS_YCCK, 0);
    webp_seed("lossy.webp", 12, 8, 0, 0);
    webp_seed("lossy_alpha.webp", 9, 9, 0, 1);
    webp_seed("lossless.webp", 10, 6, 1, 0);
    webp_seed("lossless_alpha.webp", 5, 7, 1, 1);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_make_seeds tests/fuzz/corpus\n");
        return 1;
    }
    root = argv[1];
    safetensors_seeds();
    gguf_seeds();
    image_seeds();
    return 0;
}
