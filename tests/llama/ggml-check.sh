#!/bin/sh
# Checks modes' block formats and GGUF files against llama.cpp's own library (tests/llama/ggml_check.c):
# the same dequantized bits, the same quantized bytes, and a GGUF file of ours read by llama.cpp.
# Not part of `make test`: it needs llama.cpp's libggml-base.so, which npm ships prebuilt for Linux x64:
#   npm install --prefix /tmp/nlc @node-llama-cpp/linux-x64@3.22.1
#   tests/llama/ggml-check.sh /tmp/nlc/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so
# Uses the library built in build/ (make build).
set -eu
cd "$(dirname "$0")/../.."
LIB=${1:?usage: tests/llama/ggml-check.sh PATH/libggml-base.so}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cc -std=c17 -O2 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc tests/llama/ggml_check.c build/libmodes.a \
    -o "$OUT/ggml_check" $(pkg-config --libs libpcre2-8 libutf8proc libpng libjpeg libwebp) -lpthread -lm -ldl
"$OUT/ggml_check" "$LIB" "$OUT/check.gguf"
