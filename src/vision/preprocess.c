/* Qwen3-VL image preprocessing (docs/qwen3-vl-moe.md section 3), matching transformers' default
 * torchvision backend: the resize reproduces ATen's integer arithmetic, so its levels are those of
 * the reference, not merely close to them. */
#include "vision/preprocess.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/json.h"
#include "io/file.h"

#define PREPROC_MAX_CONFIG_BYTES ((size_t)1 << 20)
/* Far beyond any real budget (4096^2 pixels by default), and no more than image_decode ever decodes:
 * min_pixels and max_pixels size allocations, so a config file cannot ask for terabytes. */
#define PREPROC_MAX_PIXELS_LIMIT IMAGE_DEFAULT_MAX_PIXELS

/* ---- Configuration -------------------------------------------------------------------------- */

void preproc_config_default(preproc_config *cfg) {
    *cfg = (preproc_config){
        .patch = 16,
        .temporal_patch = 2,
        .merge = 2,
        .min_pixels = 65536,
        .max_pixels = 16777216,
        .mean = {0.5f, 0.5f, 0.5f},
        .std = {0.5f, 0.5f, 0.5f},
        .rescale = 1.0 / 255.0,
        .do_resize = 1,
        .do_rescale = 1,
        .do_normalize = 1,
        .max_aspect = 200.0,
    };
}

/* The node for key, or NULL when it is absent or null (transformers treats None as not given). */
static const json_node *present(const json_node *obj, const char *key) {
    const json_node *v = json_get(obj, key);
    return v && v->type != JSON_NULL ? v : NULL;
}

static int get_int(const json_node *obj, const char *key, int64_t lo, int64_t hi, int64_t *v, const char *what,
                   modes_error *err) {
    if (!present(obj, key)) return 0;
    int rc = json_get_int(obj, key, *v, v, what, err);
    if (rc) return rc;
    if (*v < lo || *v > hi)
        return modes_fail(err, MODES_E_INPUT, "%s: \"%s\" must be an integer in [%lld, %lld], not %lld", what, key,
                          (long long)lo, (long long)hi, (long long)*v);
    return 0;
}

static int get_int_field(const json_node *obj, const char *key, int lo, int hi, int *v, const char *what,
                         modes_error *err) {
    int64_t x = *v;
    int rc = get_int(obj, key, lo, hi, &x, what, err);
    *v = (int)x;
    return rc;
}

static int get_bool(const json_node *obj, const char *key, int *v, const char *what, modes_error *err) {
    if (!present(obj, key)) return 0;
    return json_get_bool(obj, key, *v, v, what, err);
}

/* image_mean / image_std: three numbers, or one number for every channel (as transformers allows). */
static int get_triple(const json_node *obj, const char *key, int positive, float out[3], const char *what,
                      modes_error *err) {
    const json_node *v = present(obj, key);
    if (!v) return 0;
    double x[3];
    if (v->type == JSON_NUMBER) {
        x[0] = x[1] = x[2] = v->u.num;
    } else if (v->type == JSON_ARRAY && v->n == 3) {
        for (int c = 0; c < 3; c++) {
            const json_node *e = json_at(v, (size_t)c);
            if (e->type != JSON_NUMBER)
                return modes_fail(err, MODES_E_INPUT, "%s: \"%s\" must hold 3 numbers", what, key);
            x[c] = e->u.num;
        }
    } else {
        return modes_fail(err, MODES_E_INPUT, "%s: \"%s\" must be a number or a list of 3 numbers", what, key);
    }
    for (int c = 0; c < 3; c++) {
        if (!isfinite(x[c]) || fabs(x[c]) > 1e6 || (positive && !(x[c] > 0)))
            return modes_fail(err, MODES_E_INPUT, "%s: \"%s\"[%d] = %g is not a%s finite number", what, key, c, x[c],
                              positive ? " positive" : "");
        out[c] = (float)x[c];
    }
    return 0;
}

static int load_size(const json_node *root, preproc_config *cfg, const char *what, modes_error *err) {
    const json_node *size = present(root, "size");
    if (size) {
        if (size->type != JSON_OBJECT || !present(size, "shortest_edge") || !present(size, "longest_edge"))
            return modes_fail(err, MODES_E_INPUT,
                              "%s: \"size\" must be an object with \"shortest_edge\" and \"longest_edge\" (pixel "
                              "counts)",
                              what);
        int rc = get_int(size, "shortest_edge", 1, PREPROC_MAX_PIXELS_LIMIT, &cfg->min_pixels, what, err);
        if (rc || (rc = get_int(size, "longest_edge", 1, PREPROC_MAX_PIXELS_LIMIT, &cfg->max_pixels, what, err)))
            return rc;
    }
    int rc = get_int(root, "min_pixels", 1, PREPROC_MAX_PIXELS_LIMIT, &cfg->min_pixels, what, err);
    if (rc || (rc = get_int(root, "max_pixels", 1, PREPROC_MAX_PIXELS_LIMIT, &cfg->max_pixels, what, err)))
        return rc;
    if (cfg->min_pixels > cfg->max_pixels)
        return modes_fail(err, MODES_E_INPUT, "%s: min_pixels (shortest_edge) %lld exceeds max_pixels (longest_edge) %lld",
                          what, (long long)cfg->min_pixels, (long long)cfg->max_pixels);
    return 0;
}

static int load_values(const json_node *root, preproc_config *cfg, const char *what, modes_error *err) {
    int rc;
    if ((rc = get_int_field(root, "patch_size", 1, 1024, &cfg->patch, what, err)) ||
        (rc = get_int_field(root, "temporal_patch_size", 1, 64, &cfg->temporal_patch, what, err)) ||
        (rc = get_int_field(root, "merge_size", 1, 64, &cfg->merge, what, err)))
        return rc;
    if (cfg->patch * cfg->merge > 4096)
        return modes_fail(err, MODES_E_INPUT, "%s: patch_size * merge_size = %d is over 4096", what,
                          cfg->patch * cfg->merge);
    if ((rc = load_size(root, cfg, what, err))) return rc;
    if ((rc = get_triple(root, "image_mean", 0, cfg->mean, what, err)) ||
        (rc = get_triple(root, "image_std", 1, cfg->std, what, err)))
        return rc;
    if (present(root, "rescale_factor")) {
        if ((rc = json_get_num(root, "rescale_factor", cfg->rescale, &cfg->rescale, what, err))) return rc;
        if (!isfinite(cfg->rescale) || !(cfg->rescale > 0) || cfg->rescale > 1e6)
            return modes_fail(err, MODES_E_INPUT, "%s: \"rescale_factor\" must be a positive number, not %g", what,
                              cfg->rescale);
    }
    int64_t resample = 3;
    if ((rc = get_int(root, "resample", 0, 5, &resample, what, err))) return rc;
    if (resample != 3)
        return modes_fail(err, MODES_E_INPUT, "%s: \"resample\" %lld is not supported; only 3 (bicubic) is", what,
                          (long long)resample);
    if ((rc = get_bool(root, "do_resize", &cfg->do_resize, what, err)) ||
        (rc = get_bool(root, "do_rescale", &cfg->do_rescale, what, err)) ||
        (rc = get_bool(root, "do_normalize", &cfg->do_normalize, what, err)))
        return rc;
    return 0;
}

int preproc_config_load(const char *path, preproc_config *cfg, modes_error *err) {
    preproc_config_default(cfg);
    char *file = path_is_dir(path) ? path_join(path, "preprocessor_config.json") : strdup(path);
    if (!file) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    struct stat st;
    if (path_is_dir(path) && stat(file, &st) != 0 && errno == ENOENT) {
        free(file);
        return 0;
    }
    char *text = NULL;
    size_t len = 0;
    json_doc *doc = NULL;
    int rc = read_file(file, PREPROC_MAX_CONFIG_BYTES, &text, &len, err);
    if (!rc) rc = json_parse(text, len, NULL, file, &doc, err);
    if (!rc && json_root(doc)->type != JSON_OBJECT)
        rc = modes_fail(err, MODES_E_INPUT, "%s: the top level must be a JSON object", file);
    if (!rc) rc = load_values(json_root(doc), cfg, file, err);
    json_free(doc);
    free(text);
    free(file);
    if (rc) preproc_config_default(cfg);
    return rc;
}

/* ---- smart_resize --------------------------------------------------------------------------- */

/* Python's round() on a float: ties go to the even neighbour. x >= 0 here, and x - floor(x) is exact. */
static double round_half_even(double x) {
    double r = floor(x), d = x - r;
    if (d > 0.5) return r + 1;
    if (d < 0.5) return r;
    return fmod(r, 2.0) == 0.0 ? r : r + 1;
}

int smart_resize(const preproc_config *cfg, int h, int w, int *out_h, int *out_w, modes_error *err) {
    *out_h = *out_w = 0;
    if (h <= 0 || w <= 0) return modes_fail(err, MODES_E_INPUT, "image of %d x %d pixels has a side of 0", w, h);
    int64_t area = (int64_t)h * w;
    if (area > ((int64_t)1 << 53))
        return modes_fail(err, MODES_E_INPUT, "image of %d x %d pixels is too large to resize", w, h);
    double aspect = (double)(h > w ? h : w) / (double)(h > w ? w : h);
    if (aspect > cfg->max_aspect)
        return modes_fail(err, MODES_E_INPUT,
                          "image of %d x %d pixels has an aspect ratio of %.1f, over the limit of %g", w, h, aspect,
                          cfg->max_aspect);
    double f = (double)cfg->patch * cfg->merge;
    double hb = round_half_even(h / f) * f, wb = round_half_even(w / f) * f;
    if (hb * wb > (double)cfg->max_pixels) {
        double beta = sqrt((double)area / (double)cfg->max_pixels);
        hb = fmax(f, floor(h / beta / f) * f);
        wb = fmax(f, floor(w / beta / f) * f);
    } else if (hb * wb < (double)cfg->min_pixels) {
        double beta = sqrt((double)cfg->min_pixels / (double)area);
        hb = ceil(h * beta / f) * f;
        wb = ceil(w * beta / f) * f;
    }
    /* The result can exceed max_pixels (a side held at one factor by max(), or ceil when scaling
     * up); the reference goes on with it, and so do we: never by more than a strip of the factor. */
    if (hb > INT32_MAX || wb > INT32_MAX)
        return modes_fail(err, MODES_E_INPUT, "image of %d x %d pixels resizes to %.0f x %.0f, too large", w, h, wb,
                          hb);
    *out_h = (int)hb;
    *out_w = (int)wb;
    return 0;
}

/* ---- Resize (ATen's uint8 antialiased bicubic) ---------------------------------------------- */

typedef struct {
    int *start, *count; /* first source index and number of taps, per output index */
    int32_t *w;         /* [out][ksize] fixed-point weights (values fit int16, as in ATen) */
    int ksize, precision;
} aa_kernel;

static void aa_kernel_free(aa_kernel *k) {
    free(k->start);
    free(k->count);
    free(k->w);
    memset(k, 0, sizeof *k);
}

/* Keys' cubic convolution with a = -0.5 (Pillow's and ATen's antialias filter), in ATen's order of
 * operations so the double weights round to the same int16 values. */
static double cubic_aa(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2.0) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0.0;
}

/* Taps of one output index (ATen's _compute_indices_min_size_weights_aa); returns the largest. */
static double aa_taps(int i, int in, double scale, double support, int ksize, double *wt, int *start, int *count) {
    double center = scale * (i + 0.5);
    double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    int64_t lo = (int64_t)(center - support + 0.5), hi = (int64_t)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    int64_t n = hi - lo;
    if (n < 0) n = 0;
    if (n > ksize) n = ksize;
    double total = 0.0, wmax = 0.0;
    for (int64_t j = 0; j < n; j++) {
        wt[j] = cubic_aa(((double)(j + lo) - center + 0.5) * invscale);
        total += wt[j];
    }
    if (total != 0.0)
        for (int64_t j = 0; j < n; j++) {
            wt[j] /= total;
            if (wt[j] > wmax) wmax = wt[j];
        }
    for (int64_t j = n; j < ksize; j++) wt[j] = 0.0;
    *start = (int)lo;
    *count = (int)n;
    return wmax;
}

static int aa_kernel_build(int in, int out, aa_kernel *k, modes_error *err) {
    memset(k, 0, sizeof *k);
    double scale = (double)in / (double)out;
    double support = scale >= 1.0 ? 2.0 * scale : 2.0; /* interp_size 4, halved, widened when shrinking */
    k->ksize = (int)ceil(support) * 2 + 1;
    double *wt = malloc((size_t)out * k->ksize * sizeof *wt);
    k->start = malloc((size_t)out * sizeof *k->start);
    k->count = malloc((size_t)out * sizeof *k->count);
    k->w = malloc((size_t)out * k->ksize * sizeof *k->w);
    if (!wt || !k->start || !k->count || !k->w) {
        free(wt);
        aa_kernel_free(k);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory for resize weights (%d -> %d)", in, out);
    }
    double wmax = 0.0;
    for (int i = 0; i < out; i++) {
        double m = aa_taps(i, in, scale, support, k->ksize, wt + (size_t)i * k->ksize, &k->start[i], &k->count[i]);
        if (m > wmax) wmax = m;
    }
    /* ATen's choice: the largest precision (at most 22 bits) at which the biggest weight stays
     * below 2^15 once rounded. */
    int p = 0;
    for (; p < 22; p++)
        if ((int)(0.5 + wmax * (double)(1 << (p + 1))) >= (1 << 15)) break;
    k->precision = p;
    for (size_t j = 0; j < (size_t)out * k->ksize; j++) {
        double v = wt[j] * (double)(1 << p);
        k->w[j] = v < 0 ? (int32_t)(-0.5 + v) : (int32_t)(0.5 + v);
    }
    free(wt);
    return 0;
}

static uint8_t fixed_to_u8(int64_t acc, int precision) {
    if (acc < 0) return 0; /* ATen shifts arithmetically, then saturates: any negative sum gives 0 */
    acc >>= precision;
    return (uint8_t)(acc > 255 ? 255 : acc);
}

static void resample_horizontal(const uint8_t *src, int in_w, int rows, uint8_t *dst, int out_w, const aa_kernel *k) {
    int64_t half = (int64_t)1 << (k->precision - 1);
    for (int y = 0; y < rows; y++) {
        const uint8_t *srow = src + (size_t)y * in_w * 3;
        uint8_t *drow = dst + (size_t)y * out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const int32_t *w = k->w + (size_t)x * k->ksize;
            const uint8_t *s = srow + (size_t)k->start[x] * 3;
            int64_t acc[3] = {half, half, half};
            for (int j = 0; j < k->count[x]; j++)
                for (int c = 0; c < 3; c++) acc[c] += (int64_t)s[3 * j + c] * w[j];
            for (int c = 0; c < 3; c++) drow[3 * x + c] = fixed_to_u8(acc[c], k->precision);
        }
    }
}

static void resample_vertical(const uint8_t *src, int width, uint8_t *dst, int out_h, const aa_kernel *k,
                              int64_t *acc) {
    size_t n = (size_t)width * 3;
    int64_t half = (int64_t)1 << (k->precision - 1);
    for (int y = 0; y < out_h; y++) {
        const int32_t *w = k->w + (size_t)y * k->ksize;
        for (size_t i = 0; i < n; i++) acc[i] = half;
        for (int j = 0; j < k->count[y]; j++) {
            const uint8_t *s = src + (size_t)(k->start[y] + j) * n;
            for (size_t i = 0; i < n; i++) acc[i] += (int64_t)s[i] * w[j];
        }
        uint8_t *d = dst + (size_t)y * n;
        for (size_t i = 0; i < n; i++) d[i] = fixed_to_u8(acc[i], k->precision);
    }
}

int image_resize_bicubic_aa(const rgb_image *src, int out_w, int out_h, rgb_image *dst, modes_error *err) {
    memset(dst, 0, sizeof *dst);
    if (!src->rgb || src->w <= 0 || src->h <= 0 || out_w <= 0 || out_h <= 0)
        return modes_fail(err, MODES_E_INPUT, "cannot resize %d x %d pixels to %d x %d", src->w, src->h, out_w, out_h);
    int in_w = src->w, in_h = src->h;
    aa_kernel kh = {0}, kv = {0};
    uint8_t *mid = NULL;
    int64_t *acc = NULL;
    int rc = 0;
    if (in_w != out_w) rc = aa_kernel_build(in_w, out_w, &kh, err);
    if (!rc && in_h != out_h) rc = aa_kernel_build(in_h, out_h, &kv, err);
    if (!rc && !(dst->rgb = malloc((size_t)out_w * out_h * 3)))
        rc = modes_fail(err, MODES_E_INTERNAL, "out of memory for a %d x %d image", out_w, out_h);
    /* The horizontal pass goes first and rounds to 8 bits, as in ATen (and Pillow). */
    const uint8_t *cur = src->rgb;
    if (!rc && in_w != out_w) {
        uint8_t *target = in_h != out_h ? (mid = malloc((size_t)out_w * in_h * 3)) : dst->rgb;
        if (!target) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory for a %d x %d image", out_w, in_h);
        else {
            resample_horizontal(src->rgb, in_w, in_h, target, out_w, &kh);
            cur = target;
        }
    }
    if (!rc && in_h != out_h) {
        if (!(acc = malloc((size_t)out_w * 3 * sizeof *acc)))
            rc = modes_fail(err, MODES_E_INTERNAL, "out of memory for a %d-pixel row", out_w);
        else resample_vertical(cur, out_w, dst->rgb, out_h, &kv, acc);
    }
    if (!rc && in_w == out_w && in_h == out_h) memcpy(dst->rgb, src->rgb, (size_t)in_w * in_h * 3);
    free(acc);
    free(mid);
    aa_kernel_free(&kh);
    aa_kernel_free(&kv);
    if (rc) rgb_image_free(dst);
    else {
        dst->w = out_w;
        dst->h = out_h;
    }
    return rc;
}

/* ---- Normalise and patchify ----------------------------------------------------------------- */

/* Every input is one of 256 levels, so the float32 arithmetic of the reference is done once per
 * level and channel. With both steps on, transformers fuses them: mean and std are divided by the
 * rescale factor (float32 tensors times a Python float) and the uint8 values, as float32, have the
 * fused mean subtracted and are divided by the fused std. */
static void level_table(const preproc_config *cfg, float lut[3][256]) {
    float inv = (float)(1.0 / cfg->rescale), r = (float)cfg->rescale;
    for (int c = 0; c < 3; c++) {
        float m = cfg->mean[c], s = cfg->std[c];
        if (cfg->do_rescale && cfg->do_normalize) {
            m = m * inv;
            s = s * inv;
        }
        for (int p = 0; p < 256; p++) {
            float v = (float)p;
            if (cfg->do_rescale && !cfg->do_normalize) v = v * r;
            if (cfg->do_normalize) v = (v - m) / s;
            lut[c][p] = v;
        }
    }
}

/* Rows in merge-block order (block row, block column, row in block, column in block); within a row,
 * channel, then frame (all frames are the one image), then y and x inside the patch. */
static void patchify(const preproc_config *cfg, const uint8_t *rgb, int w, const float lut[3][256], pixel_patches *out) {
    int P = cfg->patch, M = cfg->merge, T = cfg->temporal_patch;
    float *dst = out->values;
    for (int bh = 0; bh < out->grid_h / M; bh++)
        for (int bw = 0; bw < out->grid_w / M; bw++)
            for (int mh = 0; mh < M; mh++)
                for (int mw = 0; mw < M; mw++) {
                    int y0 = (bh * M + mh) * P, x0 = (bw * M + mw) * P;
                    for (int c = 0; c < 3; c++)
                        for (int t = 0; t < T; t++)
                            for (int py = 0; py < P; py++) {
                                const uint8_t *s = rgb + ((size_t)(y0 + py) * w + x0) * 3 + c;
                                for (int px = 0; px < P; px++) *dst++ = lut[c][s[3 * px]];
                            }
                }
}

int preprocess_size(const preproc_config *cfg, int w, int h, int *out_w, int *out_h, modes_error *err) {
    *out_w = *out_h = 0;
    if (w <= 0 || h <= 0) return modes_fail(err, MODES_E_INPUT, "image of %d x %d pixels has a side of 0", w, h);
    int f = cfg->patch * cfg->merge, rh = h, rw = w;
    int rc = cfg->do_resize ? smart_resize(cfg, h, w, &rh, &rw, err) : 0;
    if (rc) return rc;
    if (rh % f || rw % f)
        return modes_fail(err, MODES_E_INPUT,
                          "image of %d x %d pixels: without do_resize both sides must be multiples of patch_size * "
                          "merge_size = %d",
                          w, h, f);
    int64_t row_len = (int64_t)3 * cfg->temporal_patch * cfg->patch * cfg->patch;
    int64_t n_patches = (int64_t)(rh / cfg->patch) * (rw / cfg->patch);
    if (n_patches > INT32_MAX || n_patches * row_len > ((int64_t)1 << 34))
        return modes_fail(err, MODES_E_INPUT, "image resized to %d x %d gives %lld patches, too many", rw, rh,
                          (long long)n_patches);
    *out_w = rw;
    *out_h = rh;
    return 0;
}

int preprocess_image(const preproc_config *cfg, const rgb_image *img, pixel_patches *out, modes_error *err) {
    memset(out, 0, sizeof *out);
    if (!img->rgb || img->w <= 0 || img->h <= 0)
        return modes_fail(err, MODES_E_INPUT, "image of %d x %d pixels has a side of 0", img->w, img->h);
    int rh, rw;
    int rc = preprocess_size(cfg, img->w, img->h, &rw, &rh, err);
    if (rc) return rc;
    int64_t row_len = (int64_t)3 * cfg->temporal_patch * cfg->patch * cfg->patch;
    int64_t n_patches = (int64_t)(rh / cfg->patch) * (rw / cfg->patch);
    rgb_image resized = {0};
    const rgb_image *src = img;
    if (rh != img->h || rw != img->w) {
        if ((rc = image_resize_bicubic_aa(img, rw, rh, &resized, err))) return rc;
        src = &resized;
    }
    out->values = malloc((size_t)(n_patches * row_len) * sizeof *out->values);
    if (!out->values) {
        rgb_image_free(&resized);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory for %lld patches", (long long)n_patches);
    }
    out->n_patches = (int)n_patches;
    out->row_len = (int)row_len;
    out->grid_t = 1;
    out->grid_h = rh / cfg->patch;
    out->grid_w = rw / cfg->patch;
    float lut[3][256];
    level_table(cfg, lut);
    patchify(cfg, src->rgb, rw, (const float(*)[256])lut, out);
    rgb_image_free(&resized);
    return 0;
}

void pixel_patches_free(pixel_patches *p) {
    if (!p) return;
    free(p->values);
    memset(p, 0, sizeof *p);
}
