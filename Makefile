# Entry points for people; CMake does the building. See README.md.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all deps build build-asan console demo check test test-asan deb format clean

all: build

deps:
	./scripts/install-deps

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug \
		-DVIGIL_SANITIZE=ON -DVIGIL_FUZZ=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# The web console (web/, npm with its lockfile) into web/dist.
console: deps
	./scripts/build-console

# Start a demo: center on SQLite, generated PKI, one enrolled local agent,
# the web console.
demo: build console
	./scripts/demo

# Debian packages of the normal build, in $(BUILD)/deb (docs/install.md).
deb: build
	./scripts/make-deb $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS)

# The whole suite: normal build, then the same suite under ASan + UBSan
# (plus bounded fuzz runs and the style check). Last line: CTest's summary.
check: build console build-asan
	./scripts/run-checks $(BUILD) $(ASAN_BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
