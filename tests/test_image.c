/* Image decoding: PNG in every colour type and depth (interlaced too), JPEG (baseline, progressive,
 * grey, CMYK, YCCK), WebP (lossy, lossless, with alpha), each made here with the same libraries'
 * encoders, plus the reference PNGs; and bad input of every kind, each MODES_E_INPUT with a message
 * naming the file. */
#include <png.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* jpeglib.h needs size_t and FILE declared first. */
#include <jpeglib.h>
#include <webp/encode.h>

#include "check.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "png_craft.h"

/* ---- A growable byte buffer ----------------------------------------------------------------- */

typedef struct {
    unsigned char *data;
    size_t len, cap;
} bytes;

static void bytes_add(bytes *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->data = realloc(b->data, b->cap);
        if (!b->data) exit(2);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* ---- Test images ---------------------------------------------------------------------------- */

/* A deterministic pattern: smooth gradients (so lossy codecs stay close) plus a coarse checker. */
static uint8_t pattern(int x, int y, int c) {
    int v = c == 0 ? x * 7 + y : c == 1 ? y * 5 + 3 * x : 200 - 2 * x + y;
    if (((x / 8) + (y / 8)) % 2) v += 40;
    return (uint8_t)(v & 255);
}

/* ---- PNG encoding --------------------------------------------------------------------------- */

static void png_write_mem(png_structp png, png_bytep p, size_t n) { bytes_add(png_get_io_ptr(png), p, n); }
static void png_flush_mem(png_structp png) { (void)png; }

typedef struct {
    int color, depth, interlace;
    const png_color *palette;
    int n_palette;
    const png_byte *trns;
    int n_trns;
    const png_color_16 *trns_color;
} png_spec;

/* rows: h rows of packed samples in PNG order (16-bit big-endian). */
static bytes png_encode(int w, int h, const png_spec *s, const unsigned char *rows, size_t rowbytes) {
    bytes out = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "png_encode failed\n");
        exit(2);
    }
    png_set_write_fn(png, &out, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, s->depth, s->color,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->n_palette);
    if (s->trns || s->trns_color) png_set_tRNS(png, info, s->trns, s->n_trns, s->trns_color);
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < h; y++) png_write_row(png, rows + (size_t)y * rowbytes);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return out;
}

static int decode(const bytes *b, const char *what, rgb_image *img) {
    modes_error err = {0};
    int rc = image_decode(b->data, b->len, what, 0, img, &err);
    CHECKF(rc == 0, "%s: %s", what, err.msg);
    return rc;
}

/* Encodes w x h samples from sample(x, y, c) with the given layout, decodes, and compares every
 * pixel with want(x, y, c). */
typedef unsigned (*sample_fn)(int x, int y, int c);

static unsigned s_rgb(int x, int y, int c) { return c < 3 ? pattern(x, y, c) : (unsigned)((x * 31 + y) & 255); }
static unsigned s_rgb16(int x, int y, int c) { return c < 3 ? pattern(x, y, c) * 257u + (unsigned)(x + c) : 0x1234u; }
static unsigned s_grey(int x, int y, int c) { return c == 0 ? pattern(x, y, 0) : (unsigned)(x * 9 & 255); }
static unsigned s_grey16(int x, int y, int c) {
    (void)c;
    return (unsigned)((x * 977 + y * 131) % 70000 % 65536) % (x % 3 == 0 ? 300u : 65536u);
}

static void check_png_case(const char *label, int w, int h, int color, int depth, int interlace, sample_fn f,
                           void (*want)(int x, int y, unsigned *s, uint8_t *rgb)) {
    int ch = color == PNG_COLOR_TYPE_GRAY ? 1 : color == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : color == PNG_COLOR_TYPE_RGB ? 3 : 4;
    int bytes_per = depth / 8;
    size_t rowbytes = (size_t)w * ch * bytes_per;
    unsigned char *rows = malloc(rowbytes * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                unsigned v = f(x, y, color == PNG_COLOR_TYPE_GRAY_ALPHA && c == 1 ? 3 : c);
                unsigned char *p = rows + y * rowbytes + ((size_t)x * ch + c) * bytes_per;
                if (bytes_per == 2) {
                    p[0] = (unsigned char)(v >> 8);
                    p[1] = (unsigned char)v;
                } else {
                    p[0] = (unsigned char)v;
                }
            }
    png_spec spec = {.color = color, .depth = depth, .interlace = interlace};
    bytes b = png_encode(w, h, &spec, rows, rowbytes);
    rgb_image img;
    if (!decode(&b, label, &img)) {
        CHECKF(img.w == w && img.h == h, "%s: size %dx%d", label, img.w, img.h);
        int bad = 0;
        for (int y = 0; y < h && !bad; y++)
            for (int x = 0; x < w && !bad; x++) {
                unsigned s[4];
                for (int c = 0; c < ch; c++) s[c] = f(x, y, color == PNG_COLOR_TYPE_GRAY_ALPHA && c == 1 ? 3 : c);
                uint8_t exp[3];
                want(x, y, s, exp);
                if (memcmp(exp, img.rgb + ((size_t)y * w + x) * 3, 3)) {
                    const uint8_t *g = img.rgb + ((size_t)y * w + x) * 3;
                    CHECKF(0, "%s: pixel (%d,%d) = %d,%d,%d, want %d,%d,%d", label, x, y, g[0], g[1], g[2], exp[0],
                           exp[1], exp[2]);
                    bad = 1;
                }
            }
        if (!bad) CHECK(1);
        rgb_image_free(&img);
    }
    free(b.data);
    free(rows);
}

/* Expected RGB from the samples s[] of one pixel; x and y are there for the signature only. */
static void w_rgb8(int x, int y, unsigned *s, uint8_t *o) {
    (void)x;
    (void)y;
    for (int c = 0; c < 3; c++) o[c] = (uint8_t)s[c];
}
static void w_grey8(int x, int y, unsigned *s, uint8_t *o) {
    (void)x;
    (void)y;
    o[0] = o[1] = o[2] = (uint8_t)s[0];
}
static void w_high(int x, int y, unsigned *s, uint8_t *o) {
    (void)x;
    (void)y;
    for (int c = 0; c < 3; c++) o[c] = (uint8_t)(s[c] >> 8);
}
static void w_grey_high(int x, int y, unsigned *s, uint8_t *o) {
    (void)x;
    (void)y;
    o[0] = o[1] = o[2] = (uint8_t)(s[0] >> 8);
}
static void w_grey16_clamp(int x, int y, unsigned *s, uint8_t *o) {
    (void)x;
    (void)y;
    o[0] = o[1] = o[2] = (uint8_t)(s[0] > 255 ? 255 : s[0]);
}

static void test_png_types(void) {
    check_png_case("png rgb8", 23, 17, PNG_COLOR_TYPE_RGB, 8, 0, s_rgb, w_rgb8);
    check_png_case("png rgba8 (alpha dropped)", 23, 17, PNG_COLOR_TYPE_RGBA, 8, 0, s_rgb, w_rgb8);
    check_png_case("png grey8", 23, 17, PNG_COLOR_TYPE_GRAY, 8, 0, s_grey, w_grey8);
    check_png_case("png grey+alpha8", 23, 17, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, s_grey, w_grey8);
    check_png_case("png rgb8 interlaced", 23, 17, PNG_COLOR_TYPE_RGB, 8, 1, s_rgb, w_rgb8);
    check_png_case("png rgba8 interlaced", 5, 3, PNG_COLOR_TYPE_RGBA, 8, 1, s_rgb, w_rgb8);
    check_png_case("png grey8 interlaced 1x1", 1, 1, PNG_COLOR_TYPE_GRAY, 8, 1, s_grey, w_grey8);
    /* 16 bits: Pillow keeps the high byte of RGB, RGBA and grey+alpha ... */
    check_png_case("png rgb16", 19, 11, PNG_COLOR_TYPE_RGB, 16, 0, s_rgb16, w_high);
    check_png_case("png rgba16", 19, 11, PNG_COLOR_TYPE_RGBA, 16, 0, s_rgb16, w_high);
    check_png_case("png rgb16 interlaced", 19, 11, PNG_COLOR_TYPE_RGB, 16, 1, s_rgb16, w_high);
    check_png_case("png grey+alpha16", 19, 11, PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, s_rgb16, w_grey_high);
    /* ... but opens 16-bit grey as "I;16", whose conversion to RGB clamps at 255. */
    check_png_case("png grey16", 19, 11, PNG_COLOR_TYPE_GRAY, 16, 0, s_grey16, w_grey16_clamp);
}

/* Low bit depths: grey scaled to 8 bits (x255, x85, x17), palettes looked up (tRNS ignored). */
static void test_png_packed(void) {
    const int w = 13, h = 5;
    for (int depth = 1; depth <= 8; depth *= 2) {
        for (int pal = 0; pal < 2; pal++) {
            int maxv = (1 << depth) - 1;
            size_t rowbytes = ((size_t)w * depth + 7) / 8;
            unsigned char *rows = calloc(rowbytes * h, 1);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int v = (x + 3 * y) % (maxv + 1);
                    int bit = x * depth;
                    rows[y * rowbytes + bit / 8] |= (unsigned char)(v << (8 - depth - bit % 8));
                }
            png_color palette[256];
            png_byte trns[256];
            for (int i = 0; i < 256; i++) {
                palette[i] = (png_color){(png_byte)(i * 3), (png_byte)(255 - i), (png_byte)(i * 7)};
                trns[i] = (png_byte)(i * 11);
            }
            png_spec spec = {.color = pal ? PNG_COLOR_TYPE_PALETTE : PNG_COLOR_TYPE_GRAY, .depth = depth};
            if (pal) {
                spec.palette = palette;
                spec.n_palette = maxv + 1;
                spec.trns = trns;
                spec.n_trns = maxv + 1;
            }
            png_color_16 tc = {.gray = 1};
            if (!pal) spec.trns_color = &tc; /* a grey tRNS colour: ignored as well */
            bytes b = png_encode(w, h, &spec, rows, rowbytes);
            char label[64];
            snprintf(label, sizeof label, "png %s %d-bit", pal ? "palette+tRNS" : "grey+tRNS", depth);
            rgb_image img;
            if (!decode(&b, label, &img)) {
                int bad = 0;
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++) {
                        int v = (x + 3 * y) % (maxv + 1);
                        const uint8_t *g = img.rgb + ((size_t)y * w + x) * 3;
                        uint8_t e[3];
                        if (pal) e[0] = palette[v].red, e[1] = palette[v].green, e[2] = palette[v].blue;
                        else e[0] = e[1] = e[2] = (uint8_t)(v * 255 / maxv);
                        bad |= memcmp(e, g, 3) != 0;
                    }
                CHECKF(!bad && img.w == w && img.h == h, "%s: pixels differ", label);
                rgb_image_free(&img);
            }
            free(b.data);
            free(rows);
        }
    }
}

/* The reference PNGs: RGBA with alpha holes must come back as its stored RGB. The RGB values of the
 * transparent pixels are checked against the preprocessing reference in test_preprocess. */
static void test_ref_pngs(void) {
    const char *names[] = {"ref/preprocess/rgb_37x53.png", "ref/preprocess/rgb_64x64.png",
                           "ref/preprocess/rgb_640x480.png", "ref/preprocess/rgba_120x80.png",
                           "ref/qwen3vlmoe-tiny-a/image_64x96.png"};
    int sizes[][2] = {{37, 53}, {64, 64}, {640, 480}, {120, 80}, {96, 64}};
    for (int i = 0; i < 5; i++) {
        rgb_image img;
        modes_error err = {0};
        int rc = image_load(shared_path(names[i]), 0, &img, &err);
        CHECKF(rc == 0 && img.w == sizes[i][0] && img.h == sizes[i][1], "%s: rc %d %s (%dx%d)", names[i], rc, err.msg,
               img.w, img.h);
        rgb_image_free(&img);
    }
    /* The tiny model's image equals the array the goldens were made from. */
    st_archive *a = NULL;
    modes_error err = {0};
    rgb_image img;
    if (st_open(shared_path("ref/qwen3vlmoe-tiny-a/preproc_default.safetensors"), &a, &err) == 0 &&
        image_load(shared_path("ref/qwen3vlmoe-tiny-a/image_64x96.png"), 0, &img, &err) == 0) {
        const st_tensor *t = st_find(a, "image_uint8_hwc");
        CHECK(t && t->numel == 64 * 96 * 3 && !memcmp(t->data, img.rgb, 64 * 96 * 3));
        rgb_image_free(&img);
    } else {
        CHECKF(0, "%s", err.msg);
    }
    st_close(a);
}

/* ---- JPEG ----------------------------------------------------------------------------------- */

typedef struct {
    int comps;          /* 1, 3 or 4 */
    J_COLOR_SPACE in, stored;
    int progressive, quality;
} jpeg_spec;

static bytes jpeg_encode(int w, int h, const jpeg_spec *s, const unsigned char *pixels) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    unsigned char *mem = NULL;
    unsigned long memlen = 0;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &mem, &memlen);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = s->comps;
    ci.in_color_space = s->in;
    jpeg_set_defaults(&ci);
    jpeg_set_colorspace(&ci, s->stored);
    jpeg_set_quality(&ci, s->quality, TRUE);
    if (s->progressive) jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)ci.next_scanline * w * s->comps);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    bytes b = {0};
    bytes_add(&b, mem, memlen);
    free(mem);
    return b;
}

/* Mean and max absolute difference between decoded and expected RGB. */
static void jpeg_case(const char *label, const jpeg_spec *s, int w, int h, const unsigned char *pixels,
                      const uint8_t *want, double max_mean, int max_abs) {
    bytes b = jpeg_encode(w, h, s, pixels);
    rgb_image img;
    if (!decode(&b, label, &img)) {
        CHECKF(img.w == w && img.h == h, "%s: size %dx%d", label, img.w, img.h);
        double sum = 0;
        int mx = 0;
        for (int i = 0; i < w * h * 3; i++) {
            int d = abs((int)img.rgb[i] - (int)want[i]);
            sum += d;
            if (d > mx) mx = d;
        }
        double mean = sum / (w * h * 3);
        CHECKF(mean <= max_mean && mx <= max_abs, "%s: mean |d| %.2f (<= %.2f), max %d (<= %d)", label, mean, max_mean,
               mx, max_abs);
        rgb_image_free(&img);
    }
    free(b.data);
}

static uint8_t cmyk_to_r(unsigned c, unsigned k) {
    /* Pillow: inverted samples ("CMYK;I"), then cmyk2rgb: K - round((255 - C) * K / 255). */
    unsigned ink = 255 - c, t = ink * k + 128;
    return (uint8_t)(k - (((t >> 8) + t) >> 8));
}

static void test_jpeg(void) {
    const int w = 48, h = 40;
    unsigned char *rgb = malloc(w * h * 3), *grey = malloc(w * h), *cmyk = malloc(w * h * 4);
    uint8_t *want_grey = malloc(w * h * 3), *want_cmyk = malloc(w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int i = y * w + x;
            for (int c = 0; c < 3; c++) rgb[i * 3 + c] = (unsigned char)(20 + x * 2 + y * (c + 1));
            grey[i] = (unsigned char)(20 + x * 4 + y);
            memset(want_grey + i * 3, grey[i], 3);
            /* Flat 8x8 blocks of CMYK, which a JPEG keeps nearly exactly. */
            unsigned char px[4] = {(unsigned char)(30 + 20 * (x / 8)), (unsigned char)(100 + 10 * (y / 8)), 200,
                                   (unsigned char)(180 + 10 * ((x / 8 + y / 8) % 4))};
            memcpy(cmyk + i * 4, px, 4);
            for (int c = 0; c < 3; c++) want_cmyk[i * 3 + c] = cmyk_to_r(px[c], px[3]);
        }
    jpeg_spec base = {3, JCS_RGB, JCS_YCbCr, 0, 95};
    jpeg_case("jpeg baseline", &base, w, h, rgb, rgb, 1.5, 12);
    jpeg_spec prog = {3, JCS_RGB, JCS_YCbCr, 1, 95};
    jpeg_case("jpeg progressive", &prog, w, h, rgb, rgb, 1.5, 12);
    jpeg_spec rgbstored = {3, JCS_RGB, JCS_RGB, 0, 95};
    jpeg_case("jpeg stored as RGB", &rgbstored, w, h, rgb, rgb, 1.5, 12);
    jpeg_spec g = {1, JCS_GRAYSCALE, JCS_GRAYSCALE, 0, 95};
    jpeg_case("jpeg grey", &g, w, h, grey, want_grey, 1.0, 6);
    jpeg_spec gp = {1, JCS_GRAYSCALE, JCS_GRAYSCALE, 1, 90};
    jpeg_case("jpeg grey progressive", &gp, w, h, grey, want_grey, 1.5, 8);
    jpeg_spec c = {4, JCS_CMYK, JCS_CMYK, 0, 100};
    jpeg_case("jpeg cmyk", &c, w, h, cmyk, want_cmyk, 1.0, 4);
    jpeg_spec y = {4, JCS_CMYK, JCS_YCCK, 0, 100};
    jpeg_case("jpeg ycck", &y, w, h, cmyk, want_cmyk, 1.5, 6);
    /* Pillow's formula itself, on a few exact values. */
    CHECK(cmyk_to_r(255, 255) == 255 && cmyk_to_r(0, 255) == 0 && cmyk_to_r(30, 220) == 26 && cmyk_to_r(77, 0) == 0);
    free(rgb);
    free(grey);
    free(cmyk);
    free(want_grey);
    free(want_cmyk);
}

/* ---- WebP ----------------------------------------------------------------------------------- */

static bytes webp_take(uint8_t *out, size_t n) {
    bytes b = {0};
    if (!n) {
        fprintf(stderr, "WebP encoding failed\n");
        exit(2);
    }
    bytes_add(&b, out, n);
    WebPFree(out);
    return b;
}

/* kind: 0 lossless RGB, 1 lossless RGBA, 2 lossy RGB, 3 lossy RGBA. */
static bytes webp_encode(int kind, const uint8_t *rgb, const uint8_t *rgba, int w, int h) {
    uint8_t *out = NULL;
    size_t n = kind == 0   ? WebPEncodeLosslessRGB(rgb, w, h, w * 3, &out)
               : kind == 1 ? WebPEncodeLosslessRGBA(rgba, w, h, w * 4, &out)
               : kind == 2 ? WebPEncodeRGB(rgb, w, h, w * 3, 95, &out)
                           : WebPEncodeRGBA(rgba, w, h, w * 4, 95, &out);
    return webp_take(out, n);
}

static void test_webp(void) {
    const int w = 40, h = 24;
    uint8_t *rgb = malloc(w * h * 3), *rgba = malloc(w * h * 4);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int i = y * w + x;
            for (int c = 0; c < 3; c++) rgb[i * 3 + c] = rgba[i * 4 + c] = (uint8_t)(20 + 3 * x + 2 * y * (c + 1) / 2);
            rgba[i * 4 + 3] = (uint8_t)(1 + (x * 13 + y * 7) % 255); /* never 0, so lossless keeps the RGB */
        }
    struct {
        const char *label;
        bytes b;
        int exact;
    } cases[4] = {{"webp lossless", {0}, 1},
                  {"webp lossless with alpha (dropped)", {0}, 1},
                  {"webp lossy", {0}, 0},
                  {"webp lossy with alpha (dropped)", {0}, 0}};
    for (int k = 0; k < 4; k++) cases[k].b = webp_encode(k, rgb, rgba, w, h);
    for (int k = 0; k < 4; k++) {
        rgb_image img;
        if (!decode(&cases[k].b, cases[k].label, &img)) {
            CHECKF(img.w == w && img.h == h, "%s: size", cases[k].label);
            double sum = 0;
            int mx = 0;
            for (int i = 0; i < w * h * 3; i++) {
                int d = abs((int)img.rgb[i] - (int)rgb[i]);
                sum += d;
                if (d > mx) mx = d;
            }
            if (cases[k].exact) CHECKF(mx == 0, "%s: max |d| %d", cases[k].label, mx);
            else CHECKF(sum / (w * h * 3) < 3.0 && mx < 32, "%s: mean |d| %.2f max %d", cases[k].label,
                        sum / (w * h * 3), mx);
            rgb_image_free(&img);
        }
    }
    /* Truncated: every cut refused. */
    for (int k = 0; k < 4; k++) {
        bytes *b = &cases[k].b;
        size_t cuts[] = {b->len - 1, b->len / 2, 30, 12};
        for (int j = 0; j < 4; j++) {
            rgb_image img;
            modes_error err = {0};
            int rc = image_decode(b->data, cuts[j], "cut.webp", 0, &img, &err);
            CHECKF(rc == MODES_E_INPUT && strstr(err.msg, "cut.webp") && img.rgb == NULL,
                   "%s cut at %zu: rc %d (%s)", cases[k].label, cuts[j], rc, err.msg);
        }
    }
    /* Over a pixel budget: refused before decoding. */
    rgb_image img;
    modes_error err = {0};
    CHECK(image_decode(cases[0].b.data, cases[0].b.len, "big.webp", 40 * 24 - 1, &img, &err) == MODES_E_INPUT &&
          strstr(err.msg, "big.webp") && strstr(err.msg, "limit"));
    CHECK(image_decode(cases[0].b.data, cases[0].b.len, "ok.webp", 40 * 24, &img, &err) == 0);
    rgb_image_free(&img);
    for (int k = 0; k < 4; k++) free(cases[k].b.data);
    free(rgb);
    free(rgba);
}

/* ---- Bad input ------------------------------------------------------------------------------ */

static void expect_bad(const void *data, size_t len, const char *what, const char *want, const char *label) {
    rgb_image img = {(uint8_t *)1, 7, 7};
    modes_error err = {0};
    int rc = image_decode(data, len, what, 0, &img, &err);
    CHECKF(rc == MODES_E_INPUT, "%s: rc %d (%s)", label, rc, err.msg);
    CHECKF(strstr(err.msg, what) != NULL, "%s: message does not name the file: %s", label, err.msg);
    CHECKF(!want || strstr(err.msg, want), "%s: message '%s' lacks '%s'", label, err.msg, want);
    CHECKF(img.rgb == NULL && img.w == 0 && img.h == 0, "%s: output not cleared", label);
    if (rc == 0) rgb_image_free(&img);
}

/* A PNG of only a signature, an IHDR (valid CRC) and IEND: no pixel data at all. */
static size_t png_header_only(unsigned char *buf, uint32_t w, uint32_t h) {
    memcpy(buf, "\x89PNG\r\n\x1a\n", 8);
    put_be32(buf + 8, 13);
    memcpy(buf + 12, "IHDR", 4);
    put_be32(buf + 16, w);
    put_be32(buf + 20, h);
    buf[24] = 8, buf[25] = 2, buf[26] = 0, buf[27] = 0, buf[28] = 0;
    put_be32(buf + 29, crc32_of(buf + 12, 17));
    put_be32(buf + 33, 0);
    memcpy(buf + 37, "IEND", 4);
    put_be32(buf + 41, crc32_of(buf + 37, 4));
    return 45;
}

static void test_bad(void) {
    /* Valid encodings to damage. */
    const int w = 32, h = 32;
    unsigned char *rgb = malloc(w * h * 3);
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (unsigned char)(i * 7 + (i >> 5));
    png_spec ps = {.color = PNG_COLOR_TYPE_RGB, .depth = 8};
    bytes png = png_encode(w, h, &ps, rgb, (size_t)w * 3);
    jpeg_spec js = {3, JCS_RGB, JCS_YCbCr, 0, 90}, jp = {3, JCS_RGB, JCS_YCbCr, 1, 90};
    bytes jpg = jpeg_encode(w, h, &js, rgb), jpgp = jpeg_encode(w, h, &jp, rgb);

    /* Truncated. */
    expect_bad(png.data, png.len / 2, "half.png", "truncated", "png cut in half");
    expect_bad(png.data, 40, "head.png", NULL, "png cut after IHDR");
    expect_bad(png.data, 20, "ihdr.png", NULL, "png cut inside IHDR");
    expect_bad(png.data, 8, "sig.png", NULL, "png signature only");
    expect_bad(jpg.data, jpg.len / 2, "half.jpg", "truncated", "jpeg cut in half");
    expect_bad(jpg.data, jpg.len - 200, "end.jpg", "truncated", "jpeg cut near the end");
    expect_bad(jpgp.data, jpgp.len / 2, "half_prog.jpg", "truncated", "progressive jpeg cut in half");
    expect_bad(jpg.data, 3, "soi.jpg", NULL, "jpeg magic only");

    /* Corrupt. */
    unsigned char *bad = malloc(png.len > jpg.len ? png.len : jpg.len);
    memcpy(bad, png.data, png.len);
    bad[18] ^= 0x55; /* IHDR width: the CRC no longer matches */
    expect_bad(bad, png.len, "crc.png", "corrupt PNG", "png IHDR CRC");
    memcpy(bad, png.data, png.len);
    for (size_t i = 60; i < png.len - 20; i += 3) bad[i] ^= 0xA7; /* inside IDAT */
    expect_bad(bad, png.len, "idat.png", NULL, "png garbled IDAT");
    memcpy(bad, jpg.data, jpg.len);
    for (size_t i = 4; i < 200; i++) bad[i] = (unsigned char)(i * 13);
    expect_bad(bad, jpg.len, "garbled.jpg", "corrupt JPEG", "jpeg garbled header");
    free(bad);

    /* Zero size, and a header claiming 100000 x 100000: refused before any pixel buffer exists (the
     * file has no image data at all, so reaching the decoder would fail differently). */
    unsigned char hdr[64];
    size_t n = png_header_only(hdr, 100000, 100000);
    expect_bad(hdr, n, "huge.png", "refused before decoding", "png 100000 x 100000");
    n = png_header_only(hdr, 0, 10);
    expect_bad(hdr, n, "zero.png", NULL, "png width 0");
    n = png_header_only(hdr, 10001, 10000);
    expect_bad(hdr, n, "over.png", "decode limit of 100000000 pixels", "png just over the default budget (100 MP)");
    /* JPEG with its frame header (SOF0) patched to 60000 x 60000. */
    bytes jbig = {0};
    bytes_add(&jbig, jpg.data, jpg.len);
    for (size_t i = 2; i + 9 < jbig.len; i++)
        if (jbig.data[i] == 0xFF && jbig.data[i + 1] == 0xC0) {
            jbig.data[i + 5] = 0xEA, jbig.data[i + 6] = 0x60; /* height 60000 */
            jbig.data[i + 7] = 0xEA, jbig.data[i + 8] = 0x60; /* width 60000 */
            break;
        }
    expect_bad(jbig.data, jbig.len, "huge.jpg", "refused before decoding", "jpeg 60000 x 60000");
    for (size_t i = 2; i + 9 < jbig.len; i++)
        if (jbig.data[i] == 0xFF && jbig.data[i + 1] == 0xC0) {
            jbig.data[i + 5] = 0, jbig.data[i + 6] = 0; /* height 0 */
            break;
        }
    expect_bad(jbig.data, jbig.len, "zero.jpg", NULL, "jpeg height 0");
    free(jbig.data);
    /* A budget passed by the caller applies to every format. */
    rgb_image img;
    modes_error err = {0};
    CHECK(image_decode(png.data, png.len, "b.png", 32 * 32 - 1, &img, &err) == MODES_E_INPUT && strstr(err.msg, "limit"));
    CHECK(image_decode(jpg.data, jpg.len, "b.jpg", 32 * 31, &img, &err) == MODES_E_INPUT && strstr(err.msg, "limit"));
    CHECK(image_decode(png.data, png.len, "b.png", 32 * 32, &img, &err) == 0 && img.w == 32);
    rgb_image_free(&img);

    /* Not a supported format. */
    expect_bad("GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14, "a.gif", "GIF", "gif");
    expect_bad("BM\x3a\0\0\0\0\0\0\0\x36\0\0\0", 14, "a.bmp", "BMP", "bmp");
    expect_bad("II*\0\x08\0\0\0", 8, "a.tif", "TIFF", "tiff");
    expect_bad("RIFF\x24\0\0\0WAVEfmt ", 16, "a.wav", "not a PNG, JPEG or WebP", "riff that is not webp");
    expect_bad("\x13\x37\xca\xfe random bytes here", 21, "noise.bin", "not a PNG, JPEG or WebP", "random bytes");
    expect_bad("", 0, "empty.png", "empty", "empty");

    free(png.data);
    free(jpg.data);
    free(jpgp.data);
    free(rgb);
}

/* Deterministic damage (byte flips, cuts, splices) to valid files of each format: every result must
 * be a clean success or MODES_E_INPUT, never a crash, a leak or a half-filled output (the sanitizer
 * build runs this too). */
static void test_mutations(void) {
    const int w = 24, h = 16;
    unsigned char *rgb = malloc(w * h * 3);
    uint8_t *rgba = malloc(w * h * 4);
    for (int i = 0; i < w * h; i++) {
        for (int c = 0; c < 3; c++) rgb[i * 3 + c] = rgba[i * 4 + c] = (uint8_t)(i * (c + 3));
        rgba[i * 4 + 3] = (uint8_t)(i * 5);
    }
    png_spec ps = {.color = PNG_COLOR_TYPE_RGB, .depth = 8, .interlace = 1};
    jpeg_spec js = {3, JCS_RGB, JCS_YCbCr, 1, 80};
    bytes files[4] = {png_encode(w, h, &ps, rgb, (size_t)w * 3), jpeg_encode(w, h, &js, rgb),
                      webp_encode(2, rgb, rgba, w, h), webp_encode(1, rgb, rgba, w, h)};
    uint32_t seed = 12345;
    int ok = 0, refused = 0, wrong = 0;
    for (int f = 0; f < 4; f++) {
        unsigned char *buf = malloc(files[f].len);
        for (int trial = 0; trial < 400; trial++) {
            memcpy(buf, files[f].data, files[f].len);
            size_t len = files[f].len;
            int flips = 1 + trial % 4;
            for (int k = 0; k < flips; k++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = 2 + (seed >> 8) % (len - 2); /* keep the magic bytes */
                buf[at] ^= (unsigned char)(1u << ((seed >> 4) % 8));
            }
            if (trial % 5 == 4) {
                seed = seed * 1103515245u + 12345u;
                len = 12 + (seed >> 8) % (len - 12);
            }
            rgb_image img;
            modes_error err = {0};
            int rc = image_decode(buf, len, "mutant", 0, &img, &err);
            if (rc == 0 && img.rgb && img.w > 0 && img.h > 0) ok++;
            else if (rc == MODES_E_INPUT && !img.rgb && strstr(err.msg, "mutant")) refused++;
            else wrong++;
            rgb_image_free(&img);
        }
        free(buf);
        free(files[f].data);
    }
    CHECKF(wrong == 0, "%d mutants gave neither a clean image nor a clean refusal", wrong);
    CHECKF(refused > 0 && ok > 0, "mutations: %d decoded, %d refused", ok, refused);
    free(rgb);
    free(rgba);
}

/* image_load: the file name in messages, a missing file, and decoding by content, not name. */
static void test_load(void) {
    char dir[] = "/tmp/modes_test_image_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    char path[256], missing[256];
    snprintf(path, sizeof path, "%s/looks_like.gif", dir);
    snprintf(missing, sizeof missing, "%s/missing.png", dir);
    unsigned char rows[2 * 3 * 2] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    png_spec ps = {.color = PNG_COLOR_TYPE_RGB, .depth = 8};
    bytes b = png_encode(2, 2, &ps, rows, 6);
    FILE *f = fopen(path, "wb");
    fwrite(b.data, 1, b.len, f);
    fclose(f);
    rgb_image img;
    modes_error err = {0};
    CHECK(image_load(path, 0, &img, &err) == 0 && img.w == 2 && img.h == 2 && !memcmp(img.rgb, rows, 12));
    rgb_image_free(&img);
    f = fopen(path, "wb");
    fwrite(b.data, 1, b.len - 30, f);
    fclose(f);
    CHECK(image_load(path, 0, &img, &err) == MODES_E_INPUT && strstr(err.msg, path));
    CHECK(image_load(missing, 0, &img, &err) == MODES_E_INPUT && strstr(err.msg, missing) && img.rgb == NULL);
    CHECK(image_load(dir, 0, &img, &err) == MODES_E_INPUT && strstr(err.msg, dir));
    unlink(path);
    rmdir(dir);
    free(b.data);
}

int main(void) {
    require_shared();
    test_png_types();
    test_png_packed();
    test_ref_pngs();
    test_jpeg();
    test_webp();
    test_bad();
    test_mutations();
    test_load();
    return check_done();
}
