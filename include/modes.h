/* modes: a C inference engine for Mixture-of-Experts multimodal LLMs with MoDES expert skipping.
 *
 * Conventions: every function that can fail returns 0 on success or a modes_status code, and fills
 * the caller's modes_error (which may be NULL) with one line naming the file, tensor or value at
 * fault. The library never prints and never exits, and keeps no global state: everything lives in
 * a modes_model (read-only weights, shareable) or a modes_ctx (KV cache and scratch, one per
 * conversation). Every _load/_new has a matching _free, which accepts NULL.
 *
 * NULL arguments: a function with a modes_error refuses a NULL pointer it needs with MODES_E_INPUT
 * and a message naming the function and the argument ("modes_eval: ids is NULL"). One without a
 * modes_error does nothing for a NULL object and returns what its comment calls the empty answer
 * (NULL, -1 or 0). Pointers documented as optional ("may be NULL") are never refused. */
#ifndef MODES_H
#define MODES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Only what this header declares is exported from the shared library, which is built with
 * -fvisibility=hidden; every declaration below sits between this push and its pop. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define MODES_VERSION "0.1.0"

typedef enum {
    MODES_OK = 0,
    MODES_E_INPUT = 1,    /* bad input: a file, an option, a prompt the model cannot take */
    MODES_E_INTERNAL = 2, /* out of memory, or a bug */
} modes_status;

typedef struct {
    int code;
    char msg[512];
} modes_error;

typedef struct modes_model modes_model;         /* weights, config, tokenizer; read-only once loaded */
typedef struct modes_ctx modes_ctx;             /* one conversation: KV cache, positions, scratch */
typedef struct modes_tokenizer modes_tokenizer;

/* Token classes (docs/modes-method.md section 8): skipping depends on them. */
enum { MODES_TOKEN_TEXT = 0, MODES_TOKEN_VISION = 1, MODES_TOKEN_SPECIAL = 2 };

/* ---- Model ---------------------------------------------------------------------------------- */

/* dir: a Hugging Face model folder (config.json, safetensors, tokenizer.json). Every tensor is
 * validated against the config before the call returns. */
int modes_model_load(const char *dir, modes_model **out, modes_error *err);
void modes_model_free(modes_model *m);
/* The model's tokenizer, owned by the model (do not free it): NULL if the folder has none or m is NULL. */
const modes_tokenizer *modes_model_tokenizer(const modes_model *m);
int modes_model_vocab(const modes_model *m);                   /* rows of the embedding; -1 for NULL */
int modes_model_is_stop(const modes_model *m, int32_t id);     /* an end-of-turn / end id; 0 for NULL */
int modes_model_token_class(const modes_model *m, int32_t id); /* MODES_TOKEN_*; -1 for NULL */

/* What a model folder holds, read from its files without running anything: architecture, shapes,
 * parameter and byte counts by part, dtypes, tokenizer (`modes inspect`). The folder is checked as
 * modes_model_load checks it, so a folder this refuses gets the message loading would give.
 * *report is a new heap string (free()): lines for people, or one JSON object and a line break. */
typedef enum { MODES_REPORT_TEXT = 0, MODES_REPORT_JSON = 1 } modes_report_format;
int modes_model_inspect(const char *dir, modes_report_format format, char **report, modes_error *err);

/* ---- Text ----------------------------------------------------------------------------------- */

/* A tokenizer on its own, without the weights: path is a tokenizer.json or a folder holding one
 * (tokenizer_config.json beside it is read too). Free with modes_tokenizer_free. A loaded model
 * has its own: modes_model_tokenizer. A tokenizer is immutable; threads may share it. */
int modes_tokenizer_load(const char *path, modes_tokenizer **out, modes_error *err);
void modes_tokenizer_free(modes_tokenizer *t);
/* Largest id plus one; -1 for NULL. */
int modes_tokenizer_vocab(const modes_tokenizer *t);

/* Text (len bytes of UTF-8; invalid UTF-8 is refused) to ids, as the Hugging Face tokenizer does;
 * nothing is added before or after. parse_special: 1 turns special tokens written in the text
 * ("<|im_start|>") into their ids, as a chat template needs; 0 encodes them as plain text, for
 * untrusted user text. *ids is a new array (free() it; never NULL on success) of *n ids. */
int modes_tokenize(const modes_tokenizer *t, const char *text, size_t len, int parse_special, int32_t **ids, int *n,
                   modes_error *err);
/* Ids to text: *text is a new NUL-terminated UTF-8 string (free() it) of *len bytes (len may be
 * NULL). Bytes that do not form valid UTF-8 become U+FFFD. skip_special drops special tokens. */
int modes_detokenize(const modes_tokenizer *t, const int32_t *ids, int n, int skip_special, char **text, size_t *len,
                     modes_error *err);
/* The raw bytes one id stands for (a piece of UTF-8 that may end or begin inside a character),
 * valid as long as the tokenizer; *len gets their count. An id with no entry gives "" and 0; an
 * id out of range is MODES_E_INPUT. To print a stream of ids, use modes_detok_stream. */
int modes_token_to_piece(const modes_tokenizer *t, int32_t id, const char **piece, size_t *len, modes_error *err);

/* Streaming detokenizer, for printing ids as modes_generate chooses them: a character whose
 * bytes are split across ids comes out whole once its last byte arrives, so everything push and
 * finish give, concatenated, equals modes_detokenize of all the ids. */
typedef struct modes_detok_stream modes_detok_stream;
int modes_detok_stream_new(const modes_tokenizer *t, int skip_special, modes_detok_stream **out, modes_error *err);
/* Takes one id; *text gets the text it completes (NUL-terminated, possibly "", valid until the next
 * call on s) and *len its length (len may be NULL). */
int modes_detok_stream_push(modes_detok_stream *s, int32_t id, const char **text, size_t *len, modes_error *err);
/* Ends the stream: *text gets what is left (U+FFFD for a character cut short), and s starts over. */
int modes_detok_stream_finish(modes_detok_stream *s, const char **text, size_t *len, modes_error *err);
void modes_detok_stream_free(modes_detok_stream *s);

/* ---- Context -------------------------------------------------------------------------------- */

typedef struct {
    int n_ctx;   /* tokens the KV cache holds; 0: 4096 (capped by the model's maximum) */
    int threads; /* 0: one per physical core (hyper-threads share a core's vector units) */
} modes_ctx_params;

int modes_ctx_new(const modes_model *m, const modes_ctx_params *p, modes_ctx **out, modes_error *err);
void modes_ctx_free(modes_ctx *c);
void modes_ctx_reset(modes_ctx *c);          /* forget the conversation, keep the memory */
int modes_ctx_n_past(const modes_ctx *c);  /* tokens in the KV cache; -1 for NULL */
int modes_ctx_n_ctx(const modes_ctx *c);   /* tokens the KV cache holds (after the cap); -1 for NULL */
int modes_model_max_ctx(const modes_model *m); /* the longest context the model takes; -1 for NULL */

/* Observes intermediate values of a forward pass (golden-file tests, `modes forward`). name is a
 * reference tap name such as "text.layer0.moe_out"; shape has ndim entries; data is fp32 or, when
 * is_int, int32. The pointers are valid only during the call. */
typedef void (*modes_tap_fn)(void *user, const char *name, int is_int, const void *data, int ndim,
                             const int64_t *shape);
void modes_ctx_set_tap(modes_ctx *c, modes_tap_fn fn, void *user);

/* Runs n text tokens through the model, appending to the KV cache (a text prompt, or a decode step).
 * logits receives vocab floats for each of the last n_logits tokens (n_logits <= n; 0 for none). */
int modes_eval(modes_ctx *c, const int32_t *ids, int n, float *logits, int n_logits, modes_error *err);

/* One preprocessed image: the processor's pixel_values rows and image_grid_thw. */
typedef struct {
    const float *pixels; /* [t * h * w][row_len], rows in merge-block order */
    int grid_t, grid_h, grid_w;
} modes_image;

/* Like modes_eval for a prompt holding images: every run of image tokens (already expanded to
 * grid_t * grid_h * grid_w / merge^2 copies, in image order) takes that image's vision features,
 * with 3-D M-RoPE positions; later decode steps continue from the right position. */
int modes_eval_images(modes_ctx *c, const int32_t *ids, int n, const modes_image *images, int n_images,
                      float *logits, int n_logits, modes_error *err);
/* Decodes an image file and preprocesses it with the model's preprocessor_config.json, as the
 * reference processor does; img->pixels is owned by the caller: free with modes_image_free. */
int modes_image_load(const modes_model *m, const char *path, modes_image *img, modes_error *err);
void modes_image_free(modes_image *img);
/* Number of image tokens an image of this grid expands to, or -1 for an impossible grid (or NULL). */
int modes_image_tokens(const modes_model *m, const modes_image *img);

/* How a picture fits the model. Pictures of any size are resized into the model's pixel budget as
 * the reference processor does (smart_resize: each side a multiple of patch * merge, the area
 * scaled into [min_pixels, max_pixels] keeping the aspect ratio; an aspect ratio over 200 is
 * refused). Decoding refuses only what cannot be decoded safely: over 100 megapixels, or a file
 * whose data is too short for the size it declares. */
typedef struct {
    int width, height;                 /* the picture as decoded */
    int resized_width, resized_height; /* what the vision tower sees */
    int tokens_w, tokens_h;            /* merged tokens along each side */
    int tokens;                        /* vision tokens the picture becomes */
} modes_image_info;
/* Decodes an image file (failing as modes_image_load would on a file that does not decode or fit)
 * and computes how it is resized, without preprocessing its pixels. */
int modes_image_probe(const modes_model *m, const char *path, modes_image_info *info, modes_error *err);

/* ---- Prompts ------------------------------------------------------------------------------- */

/* A chat prompt ready to evaluate: the model's chat template applied to an optional system message
 * and one user turn (the images, in order, then the text), image files decoded and preprocessed as
 * the reference processor does, and each image placeholder expanded to its number of vision tokens.
 * With `answer`, the answer and the end-of-turn token follow the assistant prefix, for
 * teacher-forced scoring (calibration). */
typedef struct modes_prompt modes_prompt;
int modes_prompt_new(const modes_model *m, const char *system, const char *text, const char *const *image_paths,
                     int n_images, const char *answer, modes_prompt **out, modes_error *err);
void modes_prompt_free(modes_prompt *p);
const int32_t *modes_prompt_ids(const modes_prompt *p, int *n); /* n may be NULL; NULL for a NULL p */
/* The prompt's preprocessed images, in order (owned by the prompt). */
const modes_image *modes_prompt_images(const modes_prompt *p, int *n);
/* The original and resized size of the prompt's image i (0-based, in order). */
int modes_prompt_image_info(const modes_prompt *p, int i, modes_image_info *info, modes_error *err);
/* Multi-turn use of one context. modes_generate stops at the end-of-turn id without putting it in
 * the KV cache, so the context then holds the conversation up to the answer's last id. A follow-up
 * prompt holds what comes next in the chat template: the end-of-turn id closing that answer, the
 * new user turn (its images, in order, then text) and the assistant prefix. modes_generate with it
 * on the same context prefills only the new turn and answers with the whole conversation in view:
 *     modes_prompt_new(m, system, "first question", ...)   -> modes_generate(ctx, ...)
 *     modes_prompt_followup(m, "next question", ...)        -> modes_generate(ctx, ...)   (repeat)
 * An answer cut off by max_new also lacks its last id in the cache: modes_eval that id before the
 * follow-up. When the context is full (modes_ctx_n_past near n_ctx), modes_ctx_reset starts over. */
int modes_prompt_followup(const modes_model *m, const char *text, const char *const *image_paths, int n_images,
                          modes_prompt **out, modes_error *err);
/* A whole conversation in one prompt, as a chat server receives it: each message a role ("system",
 * "user", "assistant") and parts, text or an image given as the bytes of an encoded file (PNG, JPEG,
 * WebP) in memory. The model's chat template renders every turn (earlier assistant answers included)
 * and ends with the assistant prefix; images are decoded and preprocessed as modes_prompt_new does
 * files, and named "image N (message M)" in errors. The parts only need to live during the call. */
typedef struct {
    const char *text;       /* a text part: text_len bytes of UTF-8 (image_data NULL) */
    size_t text_len;
    const void *image_data; /* an image part: image_len bytes of an image file */
    size_t image_len;
} modes_chat_part;
typedef struct {
    const char *role;
    const modes_chat_part *parts;
    int n_parts;
} modes_chat_message;
int modes_prompt_from_messages(const modes_model *m, const modes_chat_message *msgs, int n, modes_prompt **out,
                               modes_error *err);
/* Index of the first answer token (== the prompt length without the answer); -1 for NULL. */
int modes_prompt_answer_start(const modes_prompt *p);
/* modes_eval_images over the whole prompt. */
int modes_eval_prompt(modes_ctx *c, const modes_prompt *p, float *logits, int n_logits, modes_error *err);

/* ---- Expert skipping (docs/modes-method.md) ---------------------------------------------- */

typedef struct modes_policy modes_policy;

/* A policy file (JSON, version 1) made by `modes calibrate` / `modes search`; it must name this
 * model's config hash and layer count. */
int modes_policy_load(const modes_model *m, const char *path, modes_policy **out, modes_error *err);
/* A --skip SPEC: none, topk:K, topk:KT,KV, naee:BETA, threshold:TAU, dmt:TT,TV, gmlg-threshold:TAU,
 * modes:TT,TV. The last two take their alphas from `alphas` (a loaded policy), which may be NULL
 * for the others. */
int modes_policy_from_spec(const modes_model *m, const char *spec, const modes_policy *alphas, modes_policy **out,
                           modes_error *err);
void modes_policy_free(modes_policy *p);
/* The context uses p (not owned; NULL: no skipping) from its next evaluation on. */
void modes_ctx_set_policy(modes_ctx *c, const modes_policy *p);

/* Routed (token, slot) pairs: the denominator of the skip ratio counts every non-padding token,
 * special tokens included (they are never skipped). */
typedef struct {
    uint64_t slots, skipped;
    uint64_t tokens, tokens_all_skipped;
} modes_skip_count;

typedef struct {
    int n_layers;                   /* MoE layers */
    modes_skip_count phase[2][3];   /* [prefill, decode][MODES_TOKEN_*]: a step of one token is decode */
    modes_skip_count *layer;        /* [n_layers][3 classes], both phases */
    uint64_t expert_rows;           /* (token, expert) rows computed */
    uint64_t expert_bytes;          /* bytes of expert weights read (each active expert once per step) */
    uint64_t expert_activations;    /* (layer, expert) pairs run, summed over steps */
} modes_stats;

const modes_stats *modes_ctx_stats(const modes_ctx *c); /* NULL for NULL */
void modes_ctx_reset_stats(modes_ctx *c);
/* skipped / slots over a set of counts; 0 when there are none (or counts is NULL). */
double modes_skip_ratio(const modes_skip_count *counts, int n);
/* The context's skip ratio since it was made or its stats were reset: routed (token, slot) pairs
 * skipped / all of them, prefill and decode together, over tokens of token_class (MODES_TOKEN_*)
 * or of every class for -1. 0 before any routing; -1 for a NULL c or an unknown class. */
double modes_ctx_skip_ratio(const modes_ctx *c, int token_class);

/* ---- Sampling ------------------------------------------------------------------------------- */

typedef struct {
    float temperature; /* <= 0: greedy */
    int top_k;         /* 0: off */
    float top_p;       /* >= 1: off */
    uint64_t seed;
} modes_sampling;

/* Picks a token from logits (modified in place). state is the caller's RNG state, seeded from
 * modes_sampling.seed with modes_rng_seed, so runs are reproducible and threads independent. s NULL
 * is greedy (state may then be NULL); -1 for NULL logits, or a NULL state when sampling. */
uint64_t modes_rng_seed(uint64_t seed);
int32_t modes_sample(float *logits, int vocab, const modes_sampling *s, uint64_t *state);
/* modes_sample for a model's logits (modes_model_vocab of them), choosing only what modes_generate
 * may choose: never a vision placeholder, nor an id the tokenizer cannot print. For decoding loops
 * of one's own; -1 for NULL m or logits. */
int32_t modes_model_sample(const modes_model *m, float *logits, const modes_sampling *s, uint64_t *state);

/* Evaluates the prompt, then generates up to max_new tokens (sampling s, NULL: greedy) until a stop
 * id, which is not included, or until the context is full (modes_ctx_stop_reason says which). Ids
 * the tokenizer cannot print and the vision placeholders (image and video pads, vision start and
 * end: input only) are never chosen, greedy included. on_token, when set,
 * sees each new id as it is chosen (streaming). out holds max_new ids; *n_out gets the count.
 * Prefill and decode times in seconds go to the optional times[2]. */
typedef void (*modes_token_fn)(void *user, int32_t id);
int modes_generate(modes_ctx *c, const modes_prompt *p, int max_new, const modes_sampling *s, modes_token_fn on_token,
                   void *user, int32_t *out, int *n_out, double *times, modes_error *err);

/* Why the last modes_generate on a context ended. A full context is an ending, not an error: the
 * generation returns 0 with the ids that fitted, and the cache then holds n_ctx tokens. */
typedef enum {
    MODES_STOP_NONE = 0,    /* no generation has ended on this context since it was made or reset */
    MODES_STOP_EOS = 1,     /* the model chose a stop id */
    MODES_STOP_LENGTH = 2,  /* max_new ids were generated */
    MODES_STOP_CONTEXT = 3, /* the KV cache is full: no position is left for another id */
} modes_stop_reason;
modes_stop_reason modes_ctx_stop_reason(const modes_ctx *c); /* MODES_STOP_NONE for NULL */
const char *modes_stop_reason_name(modes_stop_reason r);    /* "none", "eos", "length", "context" */

/* ---- Several turns in one context -----------------------------------------------------------
 *
 * Every evaluation appends to the context's KV cache and continues its positions, so a
 * conversation goes on without evaluating its past again. The simple way is modes_prompt_new for
 * the first turn and modes_prompt_followup for each next one, each run with modes_generate (see
 * modes_prompt_followup). A program with its own decoding loop can append a turn by hand instead:
 * modes_tokenize the follow-up's text with parse_special 1 (for Qwen3-VL's ChatML
 * "<|im_end|>\n<|im_start|>user\nAnd its shape?<|im_end|>\n<|im_start|>assistant\n"; what the
 * user typed is better tokenized apart with parse_special 0 and spliced in, so a typed
 * "<|im_end|>" stays text), put first the last answer id if it was never evaluated (an answer cut
 * off by max_new), modes_eval the ids with logits for the last one, then repeat: modes_model_sample an
 * id, stop at modes_model_is_stop, else show it (modes_detok_stream_push) and modes_eval it alone.
 * modes_ctx_n_past says how much of the context is used (modes_eval refuses ids that do not fit);
 * modes_ctx_reset starts a new conversation in the same memory. */

/* ---- Workflows: calibration, search, evaluation -----------------------------------------------
 *
 * What `modes calibrate`, `search` and `eval` do, for programs of one's own. Each reads a data file
 * (JSON Lines, one example per line: {"id", "image", "question", "answer", "choices", "metric",
 * "family"}, docs/design.md section 3) and checks every example before its first pass, so that a bad
 * file fails in seconds with all its problems, not after hours. Long work reports progress through
 * a callback; the library itself never prints. */

/* Progress of long work: done of total steps of what ("checking examples"); total <= 0: open-ended. */
typedef void (*modes_progress_fn)(void *user, const char *what, long done, long total);

/* An example that cannot be used (its image does not decode, its prompt does not fit the context...). */
typedef struct {
    int index;       /* among the examples read (0-based) */
    int line;        /* in the data file */
    const char *id;  /* the example's "id", or NULL */
    const char *why; /* one line */
} modes_data_problem;

/* The data file of a workflow and what to do with its unusable examples. Zero-initialised fields
 * take the defaults; every callback may be NULL and gets user. */
typedef struct {
    const char *path;
    int limit;             /* only the first limit examples; 0: all */
    int skip_bad;          /* leave the unusable examples out (on_skip is told) instead of failing */
    const char *skip_hint; /* named in the failure as the way to leave them out (the CLI's "--skip-bad") */
    void (*on_problem)(void *user, const char *path, const modes_data_problem *p); /* each, before any pass */
    void (*on_skip)(void *user, const char *path, int skipped, int total);          /* with skip_bad */
    modes_progress_fn progress;
    void *user;
} modes_data_options;

/* Calibration: for every MoE layer (and modality), the mean KL divergence of the answer tokens'
 * distribution when that layer's routed experts are removed, normalised over layers into a policy's
 * layer importances alpha (docs/modes-method.md section 2). The policy (method modes, thresholds 0
 * until modes_search sets them) is written atomically to output. */
typedef struct {
    modes_data_options data;
    int per_layer; /* one alpha per layer for both modalities; 0: per layer and modality */
    int identity;  /* remove a layer's experts by passing its input through; 0: by a zero output */
} modes_calibrate_options;
typedef struct {
    int examples, moe_layers;
    long long answer_tokens;
    long long layer_evals, naive_layer_evals; /* token-layers computed, and without reusing prefixes */
} modes_calibrate_result;
int modes_calibrate(const modes_model *m, const modes_calibrate_options *o, const char *output,
                    modes_calibrate_result *res, modes_error *err);

/* Search: thresholds reaching a target skip ratio on the data with the smallest KL on its answers
 * (docs/modes-method.md section 5), written atomically to output as a policy with the search trace.
 * For modes and dmt, the frontier search over a grid x grid of (tau_text, tau_vision); for the
 * baselines (threshold, gmlg-threshold: one tau; naee: one beta), bisection, so that methods are
 * compared at equal skip ratios. Start from modes_search_defaults(). */
typedef struct {
    modes_data_options data;
    const char *method;         /* modes, dmt, threshold, gmlg-threshold or naee */
    const modes_policy *alphas; /* layer importances (from modes_calibrate): modes and gmlg-threshold need them */
    double target;              /* the skip ratio to reach, in [0, 1] */
    int grid;                   /* points per side */
    double cap_text, cap_vision; /* the largest thresholds; NaN: from the alphas, so the grid's corner
                                  * skips every slot that can be skipped and any reachable target is reached */
    int exhaustive;             /* evaluate the whole grid */
    int frozen;                 /* estimate skip ratios from one unskipped pass; real passes on the frontier */
} modes_search_options;
/* method modes, grid 100, caps NaN, target 0: only data.path, target and alphas are left to set. */
modes_search_options modes_search_defaults(void);
/* 1 when a search method needs alphas, 0 when not, -1 when it is not a search method (or NULL). */
int modes_search_method_needs_alphas(const char *method);
typedef struct {
    double tau[2];   /* the chosen policy's thresholds: text, vision */
    double beta;     /* naee's first layer beta; 0 for the others */
    double skip, skip_text, skip_vision, kl;
    int real_passes; /* passes over the data run for real */
    /* On a MODES_E_INPUT failure because the caps given cannot reach the target while the default
     * caps can: 1, and the caps to pass instead (cap_text, cap_vision). */
    int caps_reach;
    double suggest_cap[2];
} modes_search_result;
int modes_search(const modes_model *m, const modes_search_options *o, const char *output, modes_search_result *res,
                 modes_error *err);

/* Evaluation: every example answered greedily (max_new tokens at most) without skipping and under
 * each run's policy, scored by its metric (exact, choice, yesno), with each run's skip ratios. The
 * unskipped run is always the first, labelled "none"; runs add to it. */
typedef struct {
    const char *label;          /* names the run in reports: a --skip spec or a policy file's path */
    const modes_policy *policy; /* NULL: no skipping */
} modes_eval_run;
typedef struct {
    modes_data_options data;
    int max_new; /* 0: 16 */
} modes_eval_options;
typedef struct modes_eval_report modes_eval_report;
int modes_eval_data(const modes_model *m, const modes_eval_options *o, const modes_eval_run *runs, int n_runs,
                    modes_eval_report **out, modes_error *err);
/* The report as a new heap string (free()): MODES_REPORT_TEXT, a table for people (per family too
 * when the data has several); MODES_REPORT_JSON, one object with every run ("runs") and the examples
 * left out ("skipped_examples"), and with_records each example's answer and predictions ("records"). */
int modes_eval_report_format(const modes_eval_report *r, modes_report_format format, int with_records, char **out,
                             modes_error *err);
/* A plot of accuracy retained against skip ratio, one line per method (SVG), written atomically;
 * model names the model in the title (its folder's name is used). */
int modes_eval_report_plot(const modes_eval_report *r, const char *path, const char *model, modes_error *err);
int modes_eval_report_skipped(const modes_eval_report *r); /* examples left out by skip_bad; -1 for NULL */
void modes_eval_report_free(modes_eval_report *r);

/* ---- Workflows: speed ------------------------------------------------------------------------
 *
 * What `modes bench` does: prefill and decode speed without skipping and under each policy, in one
 * process (each policy in a KV cache of its own, taking turns, the median of the repetitions after a
 * warm-up), judged against the machine's measured read bandwidth and peak multiply-add rate. */
typedef struct {
    const char *model;          /* a model folder, or NULL with synthetic */
    const char *synthetic;      /* "qwen3-vl-30b-a3b": random bf16 weights of its real dimensions */
    int layers;                 /* synthetic: decoder layers, 1 to 48 */
    double expert_gb;           /* synthetic: GB of distinct expert weights, shared by the layers */
    const char *const *policies; /* --skip specs (modes@RATIO too: one threshold skipping RATIO of the
                                  * prompt's slots) or, where is_file[i] (is_file may be NULL), policy
                                  * files, whose first gives the specs their layer importances */
    const int *is_file;
    int n_policies;             /* at most 32 */
    const char *image;          /* the prompt: a question about this picture (model folder only; NULL:
                                 * prompt_tokens tokens, three quarters vision on the synthetic model) */
    int prompt_tokens, gen_tokens, reps;
    int threads;                /* 0: one per physical core */
    modes_progress_fn progress;
    void *progress_user;
} modes_bench_options;
/* layers 48, expert_gb 4, prompt_tokens 1024, gen_tokens 32, reps 3: set model or synthetic. */
modes_bench_options modes_bench_defaults(void);
typedef struct modes_bench_report modes_bench_report;
int modes_bench(const modes_bench_options *o, modes_bench_report **out, modes_error *err);
/* MODES_REPORT_TEXT: the model, the machine and a table of every run; MODES_REPORT_JSON: one object
 * with the machine's limits and every run's measurements (null where not measured). Free *out. */
int modes_bench_report_format(const modes_bench_report *r, modes_report_format format, char **out, modes_error *err);
/* Speed-up against skip ratio (SVG, prefill and decode panels, ideal dashed), written atomically. */
int modes_bench_report_plot(const modes_bench_report *r, const char *path, modes_error *err);
void modes_bench_report_free(modes_bench_report *r);

/* ---- Building on the library -----------------------------------------------------------------
 *
 * Small services the `modes` CLI uses, public so that a program of one's own reports errors, writes
 * files and JSON the way the library does. */

/* Fills err (when not NULL) with code and the formatted message, and returns code, so a failing
 * path reads `return modes_fail(err, MODES_E_INPUT, "%s: no such example", path);`. Control bytes
 * in the message become '?': it stays one line. */
int modes_fail(modes_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Puts context before an existing message: "PREFIX: message" ("stdin line 3: ..."). */
void modes_error_prefix(modes_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A whole file as a new NUL-terminated heap string (free()) of *len bytes (len may be NULL); a file
 * over max_bytes is refused before it is read. */
int modes_read_file(const char *path, size_t max_bytes, char **data, size_t *len, modes_error *err);
/* Writes len bytes to path atomically: into a temporary file beside it, renamed over path only when
 * complete, so an interrupted run never leaves a truncated file where a good one was. */
int modes_write_file_atomic(const char *path, const void *data, size_t len, modes_error *err);
/* Whether modes_write_file_atomic(path) could succeed now (it creates and removes the temporary), so
 * long work can refuse an output it could not save before it starts. */
int modes_check_writable(const char *path, modes_error *err);

/* The threads modes_ctx_params.threads 0 means: this machine's physical cores (at least 1). */
int modes_physical_cores(void);

/* JSON text as the library writes it. s (n bytes, which may hold NULs) as a quoted, escaped JSON
 * string: a new heap string (free()), NULL when out of memory. */
char *modes_json_quote(const char *s, size_t n);
/* v as the shortest JSON number that reads back as v ("null" for NaN and infinities), in buf. */
const char *modes_json_number(double v, char buf[40]);
/* text (len bytes) parsed as one JSON object (at most 64 MiB, nesting at most 16 deep; what names
 * the text in errors): *value gets a copy of its string member key (a new heap string of *value_len
 * bytes, which may hold NULs; free()), or NULL when the member is missing or not a string. */
int modes_json_string_member(const char *text, size_t len, const char *what, const char *key, char **value,
                             size_t *value_len, modes_error *err);

/* JSON read as the library reads it (strict RFC 8259, UTF-8 checked, limits checked while parsing),
 * for programs that take JSON requests: parse once, then walk the tree. Values belong to their
 * document and live until modes_json_free. Look-ups on a value of another type (or NULL) give the
 * empty answer: NULL, 0 or NaN. */
typedef struct modes_json_doc modes_json_doc;
typedef struct modes_json modes_json; /* one value in a document */
typedef enum {
    MODES_JSON_NULL = 0, MODES_JSON_FALSE, MODES_JSON_TRUE, MODES_JSON_NUMBER, MODES_JSON_STRING, MODES_JSON_ARRAY,
    MODES_JSON_OBJECT
} modes_json_type;
/* text (len bytes; at most max_bytes, 0: 64 MiB; nesting at most max_depth, 0: 64); what names it in errors. */
int modes_json_parse(const char *text, size_t len, const char *what, size_t max_bytes, int max_depth,
                     modes_json_doc **out, modes_error *err);
void modes_json_free(modes_json_doc *d);
const modes_json *modes_json_root(const modes_json_doc *d);
int modes_json_type_of(const modes_json *v);     /* a modes_json_type; -1 for NULL */
const char *modes_json_type_name(int type);      /* "string", "number", ...; "unknown" for others */
const modes_json *modes_json_get(const modes_json *obj, const char *key); /* an object's member */
const modes_json *modes_json_at(const modes_json *arr, size_t i);         /* an array's item */
size_t modes_json_count(const modes_json *v);    /* an array's items or an object's members */
const char *modes_json_str(const modes_json *v, size_t *len); /* a string (may hold NULs); len may be NULL */
double modes_json_num(const modes_json *v);


/* ---- Checking against a reference ------------------------------------------------------------
 *
 * What `modes forward`, `generate` and `preprocess` use to compare the engine with the reference
 * implementation's dumps, tensor by tensor. */

/* Tensor files (safetensors), written for the comparison. Tensors are copied when added. */
typedef enum { MODES_VALUES_F32 = 0, MODES_VALUES_I64 = 1 } modes_value_type;
typedef struct modes_tensor_writer modes_tensor_writer;
int modes_tensor_writer_new(modes_tensor_writer **out, modes_error *err);
/* shape has ndim entries; data holds their product of values of type. A name given twice is refused. */
int modes_tensor_writer_add(modes_tensor_writer *w, const char *name, modes_value_type type, int ndim,
                            const int64_t *shape, const void *data, modes_error *err);
int modes_tensor_writer_save(const modes_tensor_writer *w, const char *path, modes_error *err); /* atomically */
void modes_tensor_writer_free(modes_tensor_writer *w);

/* A reference case file (safetensors): input_ids, and for image cases pixel_values and
 * image_grid_thw, every size checked against the file and the model m. */
typedef struct modes_case modes_case;
int modes_case_load(const modes_model *m, const char *path, modes_case **out, modes_error *err);
/* Replaces the case's images by image files, preprocessed with m's settings. */
int modes_case_set_images(modes_case *c, const modes_model *m, const char *const *paths, int n, modes_error *err);
const int32_t *modes_case_ids(const modes_case *c, int *n);        /* n may be NULL; NULL for a NULL c */
const modes_image *modes_case_images(const modes_case *c, int *n); /* owned by the case; n may be NULL */
void modes_case_free(modes_case *c);

/* Preprocesses an image file without a model: with the preprocessor_config.json of config (a model
 * folder or that file itself; NULL, or a folder without one: the Qwen3-VL defaults). *row_len gets
 * the values per patch row (img holds grid_t * grid_h * grid_w rows); free with modes_image_free. */
int modes_image_preprocess(const char *config, const char *path, modes_image *img, int *row_len, modes_error *err);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
