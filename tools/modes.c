/* The modes CLI: one file per subcommand (tools/cmd_*.c); this file only dispatches. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"run", cmd_run, "answer a prompt with the chat template (streaming)"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server: chat completions, per-request skipping"},
    {"chat", cmd_chat, "a conversation on stdin in one KV cache; /image, /policy, /stats commands"},
    {"calibrate", cmd_calibrate, "layer importances (alpha) from a calibration set -> policy file"},
    {"search", cmd_search, "thresholds for a target skip ratio (frontier search) -> policy file"},
    {"eval", cmd_eval, "benchmark accuracy with and without skipping; table, JSON and plot"},
    {"bench", cmd_bench, "prefill/decode speed with and without skipping (model folder or --synthetic)"},
    {"forward", cmd_forward, "one teacher-forced pass; write logits and taps to safetensors"},
    {"generate", cmd_generate, "greedy continuation of input_ids through the KV cache"},
    {"tokenize", cmd_tokenize, "JSON Lines {\"text\"} on stdin -> {\"ids\"} on stdout"},
    {"preprocess", cmd_preprocess, "image -> pixel_values and image_grid_thw, as the reference processor"},
    {"inspect", cmd_inspect, "architecture, shapes, parameter and byte counts of a model folder"},
};

static void usage(FILE *f) {
    fprintf(f, "modes %s: MoE multimodal LLM inference with MoDES expert skipping\n\nusage: modes COMMAND [options]\n\n",
            MODES_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`modes COMMAND --help` describes each command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("modes %s\n", MODES_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "modes: unknown command '%s' (try modes --help)\n", argv[1]);
    return 1;
}
