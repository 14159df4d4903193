#!/usr/bin/env bash
# modes serve on the embedded model, on a free loopback port, talked to with curl: the chat page and
# /health (without the key), /v1/models, a chat completion with a base64 PNG answered as `modes run` answers it (greedy,
# unskipped and under the server's policy, whose skip ratio is reported), the same streamed as
# server-sent events whose pieces join into the same answer, a --skip spec per request, OpenAI-style
# errors (wrong type, bad JSON, broken base64, an unknown policy, a body over --max-body, a context
# overflow, a missing key, an unknown path), 8 concurrent clients on 2 contexts all answered right,
# /metrics, and a clean stop on SIGTERM.
# Exit 77 (skipped) when the build has no HTTP library.
set -u
bin=${MODES_BIN:-build/modes}
tests=${MODES_TESTS:-tests}
model=$tests/../models/shapes-vqa
. "$tests/cli/lib/ok.sh"
key=test-key-123
img=$model/data/images/test-00000.png
first() { head -1 "$model/data/test.jsonl" | python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['$1'])"; }
question=$(first question)
expected=$(first answer)

"$bin" serve -m "$model" --policy "$model/policy-88.json" --port 0 --api-key "$key" -t 1 --max-body 400000 \
    -c 256 --parallel 2 2>"$TMP/err" &
pid=$!
for _ in $(seq 1200); do # up to 2 minutes on a loaded machine
    grep -q 'listening on' "$TMP/err" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if grep -q 'no HTTP server' "$TMP/err"; then
    cat "$TMP/err"
    echo "skipped: this build has no libmicrohttpd"
    exit 77
fi
port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$TMP/err")
ok [ -n "$port" ]
[ -n "$port" ] || { cat "$TMP/err"; kill "$pid"; exit 1; }
url=http://127.0.0.1:$port
auth=(-H "Authorization: Bearer $key")

# status FILE ARGS...: curl's HTTP status, the body in FILE
status() {
    local out=$1
    shift
    curl -s -o "$out" -w '%{http_code}' "$@"
}

ok [ "$(status "$TMP/page" "$url/")" = 200 ]
ok grep -q '/v1/chat/completions' "$TMP/page"
ok [ "$(status "$TMP/health" "$url/health")" = 200 ]
ok [ "$(field "$TMP/health" 'd["status"]')" = ok ]
ok [ "$(status "$TMP/models" "$url/v1/models")" = 401 ]
ok [ "$(field "$TMP/models" 'd["error"]["type"]')" = authentication_error ]
ok [ "$(status "$TMP/models" -H "Authorization: Bearer wrong" "$url/v1/models")" = 401 ]
ok [ "$(status "$TMP/models" "${auth[@]}" "$url/v1/models")" = 200 ]
ok [ "$(field "$TMP/models" 'd["data"][0]["id"]')" = shapes-vqa ]
ok [ "$(field "$TMP/models" '",".join(d["data"][0]["modes"]["policies"])')" = policy-88 ]

# request FILE [EXTRA FIELDS]: a chat completion body asking the question about the picture
request() {
    python3 - "$img" "$question" "$2" >"$1" <<'EOF'
import base64, json, sys
img, question, extra = sys.argv[1], sys.argv[2], sys.argv[3]
body = {"model": "shapes-vqa", "temperature": 0, "unknown_field": [1, 2],
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(open(img, "rb").read()).decode()}},
            {"type": "text", "text": question}]}]}
body.update(json.loads(extra or "{}"))
print(json.dumps(body))
EOF
}
post() { # OUT BODY_FILE: the status
    status "$1" "${auth[@]}" -H 'Content-Type: application/json' --data-binary "@$2" "$url/v1/chat/completions"
}

run_plain=$("$bin" run -m "$model" --image "$img" -p "$question" -t 1 2>/dev/null)
run_policy=$("$bin" run -m "$model" --image "$img" -p "$question" -t 1 --policy "$model/policy-88.json" 2>/dev/null)

request "$TMP/plain.json" '{"modes": {"policy": "none"}}'
ok [ "$(post "$TMP/plain" "$TMP/plain.json")" = 200 ]
answer=$(field "$TMP/plain" 'd["choices"][0]["message"]["content"]')
echo "unskipped: '$answer' (modes run: '$run_plain', expected '$expected')"
ok [ "$answer" = "$run_plain" ]
ok [ "$answer" = "$expected" ]
ok [ "$(field "$TMP/plain" 'd["choices"][0]["finish_reason"]')" = stop ]
ok [ "$(field "$TMP/plain" 'd["object"]')" = chat.completion ]
ok [ "$(field "$TMP/plain" 'd["usage"]["total_tokens"] == d["usage"]["prompt_tokens"] + d["usage"]["completion_tokens"] > 1')" = True ]
ok [ "$(field "$TMP/plain" 'd["modes"]["policy"]')" = none ]
ok [ "$(field "$TMP/plain" 'd["modes"]["skip"]["all"]')" = 0 ]

request "$TMP/default.json" ''
ok [ "$(post "$TMP/default" "$TMP/default.json")" = 200 ]
echo "policy-88: '$(field "$TMP/default" 'd["choices"][0]["message"]["content"]')' (modes run: '$run_policy')"
ok [ "$(field "$TMP/default" 'd["choices"][0]["message"]["content"]')" = "$run_policy" ]
ok [ "$(field "$TMP/default" 'd["modes"]["policy"]')" = policy-88 ]
ok [ "$(field "$TMP/default" 'd["modes"]["skip"]["vision"] > 0.5 and d["modes"]["skip"]["text"] > 0.5')" = True ]
ok [ "$(field "$TMP/default" 'd["modes"]["prefill_tokens_per_second"] > 0')" = True ]

request "$TMP/topk.json" '{"modes": {"skip": "topk:1"}}'
ok [ "$(post "$TMP/topk" "$TMP/topk.json")" = 200 ]
ok [ "$(field "$TMP/topk" 'd["modes"]["policy"]')" = topk:1 ]
ok [ "$(field "$TMP/topk" 'd["modes"]["skip"]["all"] > 0')" = True ]

# Streamed: data: lines, the pieces join into the unskipped answer, the last is [DONE].
request "$TMP/stream.json" '{"modes": {"policy": "none"}, "stream": true, "stream_options": {"include_usage": true}}'
curl -sN "${auth[@]}" --data-binary "@$TMP/stream.json" -D "$TMP/stream_headers" "$url/v1/chat/completions" >"$TMP/stream"
ok grep -qi '^content-type: text/event-stream' "$TMP/stream_headers"
ok [ "$(grep -c '^data: ' "$TMP/stream")" -ge 4 ]
ok [ "$(grep '^data: ' "$TMP/stream" | tail -1)" = "data: [DONE]" ]
joined=$(python3 - "$TMP/stream" <<'EOF'
import json, sys
text, finish, usage = "", None, None
for line in open(sys.argv[1]):
    if not line.startswith("data: ") or line.strip() == "data: [DONE]":
        continue
    chunk = json.loads(line[6:])
    assert chunk["object"] == "chat.completion.chunk"
    for c in chunk["choices"]:
        text += c["delta"].get("content") or ""
        finish = c["finish_reason"] or finish
    usage = chunk.get("usage") or usage
assert finish == "stop" and usage["completion_tokens"] >= 1, (finish, usage)
print(text)
EOF
)
echo "streamed: '$joined'"
ok [ "$joined" = "$answer" ]

# 8 clients at once on 2 contexts: every answer complete and right (the queue holds the rest).
clients=()
for k in $(seq 8); do
    post "$TMP/par$k" "$TMP/plain.json" >"$TMP/par$k.status" &
    clients+=($!)
done
wait "${clients[@]}"
for k in $(seq 8); do
    ok [ "$(cat "$TMP/par$k.status")" = 200 ]
    ok [ "$(field "$TMP/par$k" 'd["choices"][0]["message"]["content"]')" = "$answer" ]
done

# Errors, OpenAI-style.
printf '{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}' >"$TMP/type.json"
ok [ "$(post "$TMP/type" "$TMP/type.json")" = 400 ]
ok [ "$(field "$TMP/type" 'd["error"]["type"]')" = invalid_request_error ]
ok grep -q temperature "$TMP/type"
printf '{"messages": [' >"$TMP/badjson.json"
ok [ "$(post "$TMP/badjson" "$TMP/badjson.json")" = 400 ]
printf '{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,A*B="}}]}]}' >"$TMP/b64.json"
ok [ "$(post "$TMP/b64" "$TMP/b64.json")" = 400 ]
ok grep -q base64 "$TMP/b64"
printf '{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}]}]}' >"$TMP/notimg.json"
ok [ "$(post "$TMP/notimg" "$TMP/notimg.json")" = 400 ]
printf '{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "/etc/hostname"}}]}]}' >"$TMP/local.json"
ok [ "$(post "$TMP/local" "$TMP/local.json")" = 400 ]
ok grep -q allow-local-files "$TMP/local"
request "$TMP/nopolicy.json" '{"modes": {"policy": "policy-99"}}'
ok [ "$(post "$TMP/nopolicy" "$TMP/nopolicy.json")" = 400 ]
request "$TMP/long.json" '{"max_tokens": 1000}'
ok [ "$(post "$TMP/long" "$TMP/long.json")" = 400 ]
ok [ "$(field "$TMP/long" 'd["error"]["code"]')" = context_length_exceeded ]
head -c 500000 /dev/zero | tr '\0' ' ' >"$TMP/huge.json"
ok [ "$(post "$TMP/huge" "$TMP/huge.json")" = 413 ]
ok [ "$(status "$TMP/nf" "${auth[@]}" "$url/v1/nothing")" = 404 ]
ok [ "$(status "$TMP/get" "${auth[@]}" "$url/v1/chat/completions")" = 405 ]

# The server is still up and counted everything.
ok [ "$(status "$TMP/metrics" "$url/metrics")" = 401 ]
ok [ "$(status "$TMP/metrics" "${auth[@]}" "$url/metrics")" = 200 ]
ok grep -q '^modes_requests_total{code="400"} [1-9]' "$TMP/metrics"
ok awk '$1 == "modes_completions_total" && $2 >= 12 { found = 1 } END { exit !found }' "$TMP/metrics"
ok grep -qE '^modes_experts_skipped_total\{phase="prefill",modality="vision"\} [1-9]' "$TMP/metrics"
ok grep -qE '^modes_decode_tokens_per_second [0-9.e+]+$' "$TMP/metrics"

kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
ok bash -c "! kill -0 $pid 2>/dev/null"
wait "$pid"
ok [ $? -eq 0 ]
ok grep -q 'stopping (SIGTERM)' "$TMP/err"
ok_done
