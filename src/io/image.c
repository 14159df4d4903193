/* Image decoding into 8-bit RGB with the conversions Pillow's convert("RGB") makes (see image.h).
 *
 * libpng and libjpeg report fatal errors by calling back into us; the callbacks record the message
 * and longjmp out. Everything the decoder allocates lives in a state struct owned by the caller of
 * the function that calls setjmp, so nothing the jump skips over needs to be volatile, and one
 * cleanup path frees it all whether decoding finished or not. */
#include "io/image.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jpeglib.h needs size_t and FILE declared first. */
#include <jerror.h>
#include <jpeglib.h>
#include <webp/decode.h>

#include "core/error.h"
#include "io/file.h"

/* ---- Shared helpers ------------------------------------------------------------------------- */

/* Checks the size a header declares, before any pixel buffer exists. */
static int check_size(const char *what, const char *fmt, long long w, long long h, int64_t max_pixels,
                      modes_error *err) {
    if (w <= 0 || h <= 0)
        return modes_fail(err, MODES_E_INPUT, "%s: %s image declares %lld x %lld pixels; a side of 0 is refused",
                          what, fmt, w, h);
    if (w > INT32_MAX || h > INT32_MAX || w * h > max_pixels)
        return modes_fail(err, MODES_E_INPUT,
                          "%s: %s image declares %lld x %lld pixels, over the decode limit of %lld pixels; refused "
                          "before decoding",
                          what, fmt, w, h, (long long)max_pixels);
    return 0;
}

static int alloc_rgb(const char *what, int w, int h, rgb_image *out, modes_error *err) {
    size_t n = (size_t)w * (size_t)h * 3;
    out->rgb = malloc(n);
    if (!out->rgb) return modes_fail(err, MODES_E_INTERNAL, "%s: out of memory for %d x %d pixels", what, w, h);
    out->w = w;
    out->h = h;
    return 0;
}

void rgb_image_free(rgb_image *img) {
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

/* ---- PNG ------------------------------------------------------------------------------------ */

typedef struct {
    const unsigned char *data;
    size_t len, pos;
    const char *what;
    char msg[200];
    int64_t max_pixels;
    png_structp png;
    png_infop info;
    unsigned char *rows; /* one row, or the whole image when interlaced */
    rgb_image *out;
    int err_code;        /* set when the failure was ours (size, memory), not libpng's */
    modes_error *err;
} png_state;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_state *st = png_get_error_ptr(png);
    snprintf(st->msg, sizeof st->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings (a known-bad sRGB profile, a bad ancillary-chunk CRC) do not stop Pillow either. */
static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep dst, size_t n) {
    png_state *st = png_get_io_ptr(png);
    if (n > st->len - st->pos) png_error(png, "unexpected end of file (truncated)");
    memcpy(dst, st->data + st->pos, n);
    st->pos += n;
}

/* One decoded row (after libpng's palette and low-bit-depth expansion) to RGB. */
static void png_row_to_rgb(const unsigned char *src, uint8_t *dst, int w, int channels, int depth, int grey16) {
    int bytes = depth / 8;
    for (int x = 0; x < w; x++) {
        const unsigned char *p = src + (size_t)x * channels * bytes;
        uint8_t v[3];
        if (grey16) {
            /* Pillow's "I;16" -> "RGB" clamps the 16-bit value instead of scaling it. */
            unsigned g = (unsigned)p[0] << 8 | p[1];
            v[0] = v[1] = v[2] = (uint8_t)(g > 255 ? 255 : g);
        } else if (channels <= 2) {
            v[0] = v[1] = v[2] = p[0]; /* grey (high byte when 16-bit), alpha dropped */
        } else {
            v[0] = p[0];
            v[1] = p[bytes];
            v[2] = p[2 * bytes];
        }
        memcpy(dst + 3 * (size_t)x, v, 3);
    }
}

static int png_decode_body(png_state *st) {
    if (setjmp(png_jmpbuf(st->png))) return st->err_code ? st->err_code : MODES_E_INPUT;
    png_set_read_fn(st->png, st, png_read_mem);
    png_read_info(st->png, st->info);
    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(st->png, st->info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    if ((st->err_code = check_size(st->what, "PNG", w, h, st->max_pixels, st->err))) png_longjmp(st->png, 1);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(st->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(st->png);
    int passes = png_set_interlace_handling(st->png);
    png_read_update_info(st->png, st->info);
    int channels = png_get_channels(st->png, st->info);
    int out_depth = png_get_bit_depth(st->png, st->info);
    size_t rowbytes = png_get_rowbytes(st->png, st->info);
    int grey16 = color == PNG_COLOR_TYPE_GRAY && depth == 16;
    if ((channels < 1 || channels > 4) || (out_depth != 8 && out_depth != 16) ||
        rowbytes < (size_t)w * channels * (out_depth / 8))
        png_error(st->png, "unexpected pixel layout after expansion");
    size_t nrows = passes > 1 ? h : 1;
    if (!(st->rows = malloc(rowbytes * nrows)) || alloc_rgb(st->what, (int)w, (int)h, st->out, st->err)) {
        st->err_code = modes_fail(st->err, MODES_E_INTERNAL, "%s: out of memory for %u x %u pixels", st->what,
                                  (unsigned)w, (unsigned)h);
        png_longjmp(st->png, 1);
    }
    if (passes > 1) {
        /* Adam7 fills rows over seven passes, so the whole image is needed before converting. */
        for (int p = 0; p < passes; p++)
            for (png_uint_32 y = 0; y < h; y++) png_read_row(st->png, st->rows + y * rowbytes, NULL);
        for (png_uint_32 y = 0; y < h; y++)
            png_row_to_rgb(st->rows + y * rowbytes, st->out->rgb + (size_t)y * w * 3, (int)w, channels, out_depth,
                           grey16);
    } else {
        for (png_uint_32 y = 0; y < h; y++) {
            png_read_row(st->png, st->rows, NULL);
            png_row_to_rgb(st->rows, st->out->rgb + (size_t)y * w * 3, (int)w, channels, out_depth, grey16);
        }
    }
    /* The trailing chunks are not read: Pillow does not require IEND either. */
    return 0;
}

static uint32_t crc32_png(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Bytes of IDAT payload in the file, counting only what is actually there (a chunk cut short by the
 * end of the file counts what remains). Other chunks are skipped by their declared length. */
static uint64_t png_idat_bytes(const unsigned char *d, size_t len) {
    uint64_t total = 0;
    for (size_t at = 8; at + 8 <= len;) {
        uint64_t n = be32(d + at), body = at + 8;
        if (!memcmp(d + at + 4, "IDAT", 4)) total += n < len - body ? n : len - body;
        if (n > len - body) break;
        at = (size_t)(body + n + 4); /* + CRC */
    }
    return total;
}

/* Deflate codes at most 258 bytes in 2 bits (a length and a distance code of one bit each), so the
 * data inflates at most 1032-fold; the zlib header, block headers and the image's filter bytes only
 * raise the need. Bits per pixel by colour type: grey 1, RGB 3, palette 1, grey+alpha 2, RGBA 4
 * samples of `depth` bits. Interlacing only adds filter bytes. */
static int png_check_data(const unsigned char *d, size_t len, const char *what, long long w, long long h,
                          modes_error *err) {
    static const int samples[7] = {1, 0, 3, 1, 2, 0, 4};
    int depth = d[24], color = d[25];
    if (color > 6 || !samples[color] || depth < 1 || depth > 16) return 0; /* libpng reports what is wrong */
    uint64_t need = (uint64_t)w * (uint64_t)h * (uint64_t)(samples[color] * depth) / 8;
    uint64_t have = png_idat_bytes(d, len);
    if (have * 1032 + 1032 >= need) return 0;
    return modes_fail(err, MODES_E_INPUT,
                      "%s: PNG image declares %lld x %lld pixels but holds %llu bytes of compressed pixel data, "
                      "too few for that size (at least %llu); refused before decoding",
                      what, w, h, (unsigned long long)have, (unsigned long long)(need / 1032));
}

/* The size in the IHDR chunk, which the PNG specification puts first. It is checked here, before
 * libpng runs at all: libpng reads on to the first IDAT before reporting the header, and a file
 * could fail there for another reason and hide that it asked for too many pixels. */
static int png_precheck(const unsigned char *d, size_t len, const char *what, int64_t max_pixels, modes_error *err) {
    if (len < 24 || memcmp(d + 12, "IHDR", 4)) return 0; /* libpng reports what is wrong */
    long long w = be32(d + 16), h = be32(d + 20);
    int rc = check_size(what, "PNG", w, h, max_pixels, err);
    /* The data check trusts the header's depth and colour type only when its CRC holds; a damaged
     * header is libpng's to report. */
    if (rc || len < 33 || be32(d + 8) != 13 || be32(d + 29) != crc32_png(d + 12, 17)) return rc;
    return png_check_data(d, len, what, w, h, err);
}

static int decode_png(const unsigned char *data, size_t len, const char *what, int64_t max_pixels, rgb_image *out,
                      modes_error *err) {
    int pre = png_precheck(data, len, what, max_pixels, err);
    if (pre) return pre;
    png_state st = {.data = data, .len = len, .what = what, .max_pixels = max_pixels, .out = out, .err = err};
    st.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, png_on_error, png_on_warning);
    if (st.png) st.info = png_create_info_struct(st.png);
    int rc;
    if (!st.png || !st.info) rc = modes_fail(err, MODES_E_INTERNAL, "%s: out of memory starting libpng", what);
    else rc = png_decode_body(&st);
    if (rc && !st.err_code) rc = modes_fail(err, MODES_E_INPUT, "%s: corrupt PNG: %s", what, st.msg);
    png_destroy_read_struct(st.png ? &st.png : NULL, st.info ? &st.info : NULL, NULL);
    free(st.rows);
    if (rc) rgb_image_free(out);
    return rc;
}

/* ---- JPEG ----------------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_errors;

/* libjpeg's default error_exit calls exit(); ours records the message and jumps back. */
static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_errors *je = (jpeg_errors *)cinfo->err;
    je->pub.format_message(cinfo, je->msg);
    longjmp(je->jump, 1);
}

/* libjpeg pads a stream that ends early with grey and only warns; Pillow reports the file as
 * truncated, so that warning is fatal here. Other warnings are ignored, as Pillow ignores them. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    jpeg_errors *je = (jpeg_errors *)cinfo->err;
    if (level < 0 && je->pub.msg_code == JWRN_JPEG_EOF) {
        snprintf(je->msg, sizeof je->msg, "file ends early (truncated)");
        longjmp(je->jump, 1);
    }
}

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_errors jerr;
    int created;
    unsigned char *row;
    const char *what;
    int64_t max_pixels;
    rgb_image *out;
    int err_code;
    modes_error *err;
} jpeg_state;

/* Pillow's cmyk2rgb on the inverted samples libjpeg returns for Adobe CMYK (its "CMYK;I"). */
static uint8_t cmyk_channel(unsigned inv_ink, unsigned inv_key) {
    unsigned ink = 255 - inv_ink, nk = inv_key;
    unsigned t = ink * nk + 128;
    unsigned prod = ((t >> 8) + t) >> 8; /* round(ink * nk / 255) */
    return (uint8_t)(nk - prod);         /* prod <= nk, so no clipping is needed */
}

static void jpeg_row_to_rgb(const unsigned char *src, uint8_t *dst, int w, int comps) {
    for (int x = 0; x < w; x++) {
        const unsigned char *p = src + (size_t)x * comps;
        uint8_t *d = dst + 3 * (size_t)x;
        if (comps == 1) {
            d[0] = d[1] = d[2] = p[0];
        } else if (comps == 3) {
            memcpy(d, p, 3);
        } else {
            for (int c = 0; c < 3; c++) d[c] = cmyk_channel(p[c], p[3]);
        }
    }
}

static int jpeg_decode_body(jpeg_state *st, const unsigned char *data, size_t len) {
    struct jpeg_decompress_struct *ci = &st->cinfo;
    ci->err = jpeg_std_error(&st->jerr.pub);
    st->jerr.pub.error_exit = jpeg_on_error;
    st->jerr.pub.emit_message = jpeg_on_message;
    if (setjmp(st->jerr.jump)) return st->err_code ? st->err_code : MODES_E_INPUT;
    jpeg_create_decompress(ci);
    st->created = 1;
    jpeg_mem_src(ci, data, (unsigned long)len);
    jpeg_read_header(ci, TRUE);
    if ((st->err_code = check_size(st->what, "JPEG", ci->image_width, ci->image_height, st->max_pixels, st->err)))
        longjmp(st->jerr.jump, 1);
    if (ci->jpeg_color_space == JCS_GRAYSCALE) ci->out_color_space = JCS_GRAYSCALE;
    else if (ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK) ci->out_color_space = JCS_CMYK;
    else ci->out_color_space = JCS_RGB;
    jpeg_start_decompress(ci);
    int w = (int)ci->output_width, h = (int)ci->output_height, comps = ci->output_components;
    if (comps != 1 && comps != 3 && comps != 4) {
        snprintf(st->jerr.msg, sizeof st->jerr.msg, "%d colour components are not supported", comps);
        longjmp(st->jerr.jump, 1);
    }
    if (!(st->row = malloc((size_t)w * comps)) || alloc_rgb(st->what, w, h, st->out, st->err)) {
        st->err_code = modes_fail(st->err, MODES_E_INTERNAL, "%s: out of memory for %d x %d pixels", st->what, w, h);
        longjmp(st->jerr.jump, 1);
    }
    while (ci->output_scanline < ci->output_height) {
        int y = (int)ci->output_scanline;
        JSAMPROW rowp = st->row;
        if (jpeg_read_scanlines(ci, &rowp, 1) != 1) {
            snprintf(st->jerr.msg, sizeof st->jerr.msg, "decoder stopped at row %d of %d", y, h);
            longjmp(st->jerr.jump, 1);
        }
        jpeg_row_to_rgb(st->row, st->out->rgb + (size_t)y * w * 3, w, comps);
    }
    /* jpeg_finish_decompress is skipped: it would only read the trailing markers, which Pillow does
     * not insist on either; jpeg_destroy_decompress releases everything. */
    return 0;
}

static int decode_jpeg(const unsigned char *data, size_t len, const char *what, int64_t max_pixels, rgb_image *out,
                       modes_error *err) {
    jpeg_state *st = calloc(1, sizeof *st);
    if (!st) return modes_fail(err, MODES_E_INTERNAL, "%s: out of memory starting libjpeg", what);
    *st = (jpeg_state){.what = what, .max_pixels = max_pixels, .out = out, .err = err};
    int rc = jpeg_decode_body(st, data, len);
    if (rc && !st->err_code) rc = modes_fail(err, MODES_E_INPUT, "%s: corrupt JPEG: %s", what, st->jerr.msg);
    if (st->created) jpeg_destroy_decompress(&st->cinfo);
    free(st->row);
    free(st);
    if (rc) rgb_image_free(out);
    return rc;
}

/* ---- WebP ----------------------------------------------------------------------------------- */

static const char *webp_status_name(VP8StatusCode s) {
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "file ends early (truncated)";
    default: return "unknown error";
    }
}

static int decode_webp(const unsigned char *data, size_t len, const char *what, int64_t max_pixels, rgb_image *out,
                       modes_error *err) {
    WebPBitstreamFeatures f;
    VP8StatusCode s = WebPGetFeatures(data, len, &f);
    if (s != VP8_STATUS_OK) return modes_fail(err, MODES_E_INPUT, "%s: corrupt WebP: %s", what, webp_status_name(s));
    if (f.has_animation) return modes_fail(err, MODES_E_INPUT, "%s: animated WebP is not supported", what);
    int rc = check_size(what, "WebP", f.width, f.height, max_pixels, err);
    if (rc || (rc = alloc_rgb(what, f.width, f.height, out, err))) return rc;
    size_t stride = (size_t)f.width * 3;
    /* Decoding to RGB leaves the colour of transparent pixels as stored: alpha is dropped, not
     * composited, as convert("RGB") does on Pillow's RGBA. */
    if (!WebPDecodeRGBInto(data, len, out->rgb, stride * (size_t)f.height, (int)stride)) {
        WebPDecoderConfig cfg;
        const char *why = "bitstream error";
        if (WebPInitDecoderConfig(&cfg)) {
            /* Decoding again through the advanced API gives the reason the simple call hides. */
            cfg.output.colorspace = MODE_RGB;
            cfg.output.is_external_memory = 1;
            cfg.output.u.RGBA.rgba = out->rgb;
            cfg.output.u.RGBA.stride = (int)stride;
            cfg.output.u.RGBA.size = stride * (size_t)f.height;
            VP8StatusCode s2 = WebPDecode(data, len, &cfg);
            if (s2 != VP8_STATUS_OK) why = webp_status_name(s2);
            WebPFreeDecBuffer(&cfg.output);
        }
        rgb_image_free(out);
        return modes_fail(err, MODES_E_INPUT, "%s: corrupt WebP: %s", what, why);
    }
    return 0;
}

/* ---- Format detection ----------------------------------------------------------------------- */

static const char *other_format_name(const unsigned char *d, size_t len) {
    if (len >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6))) return "GIF";
    if (len >= 2 && !memcmp(d, "BM", 2)) return "BMP";
    if (len >= 4 && (!memcmp(d, "II*\0", 4) || !memcmp(d, "MM\0*", 4))) return "TIFF";
    if (len >= 12 && !memcmp(d + 4, "ftyp", 4)) return "HEIF/AVIF";
    if (len >= 4 && !memcmp(d, "\0\0\1\0", 4)) return "ICO";
    return NULL;
}

int image_decode(const void *data, size_t len, const char *what, int64_t max_pixels, rgb_image *out,
                 modes_error *err) {
    memset(out, 0, sizeof *out);
    const unsigned char *d = data;
    if (max_pixels <= 0 || max_pixels > IMAGE_DEFAULT_MAX_PIXELS) max_pixels = IMAGE_DEFAULT_MAX_PIXELS;
    if (len == 0) return modes_fail(err, MODES_E_INPUT, "%s: empty file, not an image", what);
    if (len >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8)) return decode_png(d, len, what, max_pixels, out, err);
    if (len >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return decode_jpeg(d, len, what, max_pixels, out, err);
    if (len >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
        return decode_webp(d, len, what, max_pixels, out, err);
    const char *other = other_format_name(d, len);
    if (other)
        return modes_fail(err, MODES_E_INPUT, "%s: %s images are not supported (PNG, JPEG and WebP are)", what, other);
    return modes_fail(err, MODES_E_INPUT, "%s: not a PNG, JPEG or WebP image (unrecognised first bytes)", what);
}

int image_load(const char *path, int64_t max_pixels, rgb_image *out, modes_error *err) {
    memset(out, 0, sizeof *out);
    char *data;
    size_t len;
    int rc = read_file(path, IMAGE_MAX_FILE_BYTES, &data, &len, err);
    if (rc) return rc;
    rc = image_decode(data, len, path, max_pixels, out, err);
    free(data);
    return rc;
}
