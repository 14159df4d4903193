# Convenience targets over CMake. The build itself is CMake + Ninja in build/ (release) and
# build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer), so `cmake` users need none of this.
#   make          build build/modes
#   make test     run the test suite on the release build
#   make asan     run the same suite under ASan + UBSan
#   make fuzz-smoke  build the libFuzzer targets (clang) in build-fuzz/ and fuzz each for FUZZ_SECONDS
#   make check    all three, ending with one line of totals (scripts/check.sh; what CI runs)
#   make demo     answer an image question with the embedded model, without and with skipping
JOBS ?= $(shell nproc)
SHARED ?= $(abspath ../shared)

.PHONY: all build test asan fuzz-smoke check demo clean
all: build

build:
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMODES_SHARED_DIR=$(SHARED) >/dev/null
	cmake --build build -j $(JOBS)

test: build
	ctest --test-dir build --output-on-failure -j $(JOBS)

asan:
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMODES_SANITIZE=ON -DMODES_SHARED_DIR=$(SHARED) >/dev/null
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    ctest --test-dir build-asan --output-on-failure -j $(JOBS)

FUZZ_SECONDS ?= 15
fuzz-smoke:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(JOBS) scripts/fuzz-smoke.sh

# In this order, each only after the one before has passed; the last line is the totals.
check:
	MAKE="$(MAKE)" JOBS=$(JOBS) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/check.sh

demo: build
	scripts/demo.sh

clean:
	rm -rf build build-asan build-fuzz
