# Kiseki's entry points.  Everything real happens in CMake (build) and pytest
# (end-to-end); this file only sequences them so that on a fresh Debian 12
# machine `make run` and `make test` are each one command.
#
#   make deps    install the Debian packages the build and tests need
#   make build   build/        Release build (binaries in build/bin/)
#   make run     start the single-node development cluster
#   make test    unit tests (normal + ASan/UBSan/LSan), then end-to-end tests
#   make bench   benchmarks (figures and ratios to limits measured in-run)
#   make lint    clang-format check, clang-tidy, cppcheck
#   make fuzz    libFuzzer targets, each run for FUZZ_SECONDS
#   make docker  local base image (no registry) and the kiseki image

JOBS         ?= $(shell nproc)
BUILD        ?= build
BUILD_ASAN   ?= build-asan
BUILD_FUZZ   ?= build-fuzz
FUZZ_SECONDS ?= 30
PYTEST       ?= /usr/bin/python3 -m pytest
CMAKE_GEN    := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all deps build build-asan run test test-unit test-asan test-e2e \
        bench lint fuzz docker clean

all: build

deps:
	@tools/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release

$(BUILD_ASAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_ASAN) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Asan

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(BUILD_ASAN)/CMakeCache.txt
	cmake --build $(BUILD_ASAN) -j $(JOBS)

run: build
	@tools/run-dev.sh $(BUILD)

test: test-unit test-asan test-e2e

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# detect_leaks is LeakSanitizer; abort_on_error makes a finding fail the test.
test-asan: build-asan
	cd $(BUILD_ASAN) && \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

test-e2e: build
	KS_BUILD=$(abspath $(BUILD)) $(PYTEST) -q tests/e2e

bench: build
	@tools/bench.sh $(BUILD)

lint: deps $(BUILD)/CMakeCache.txt
	@tools/lint.sh $(BUILD)

fuzz: deps
	cmake -S . -B $(BUILD_FUZZ) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_C_COMPILER=clang
	cmake --build $(BUILD_FUZZ) -j $(JOBS)
	@tools/fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

docker: deps
	@docker/build.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
