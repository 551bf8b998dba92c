# The only way in. `make run` starts parker with heavy_server; `make test` runs every test;
# `make bench` runs the benchmark. Each installs the Debian packages it needs first.
BUILD    ?= build
JOBS     ?= $(shell nproc)
SANITIZE ?= 0
ifeq ($(SANITIZE),1)
  BUILD := build-sanitize
  CMAKE_FLAGS += -DPARKER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
endif

BUILD_PACKAGES := g++ make cmake pkg-config libuv1-dev libspdlog-dev libfmt-dev libcli11-dev catch2
TEST_PACKAGES  := redis-tools procps
BENCH_PACKAGES := redis-server redis-tools nutcracker gnuplot-nox procps

.PHONY: all build run test bench deps-build deps-test deps-bench clean

all: build

# Installs what is missing (and says so); does nothing when everything is there.
define install_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

deps-build:
	$(call install_missing,$(BUILD_PACKAGES))
deps-test: deps-build
	$(call install_missing,$(TEST_PACKAGES))
deps-bench: deps-build
	$(call install_missing,$(BENCH_PACKAGES))

build: deps-build
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./scripts/run.sh $(BUILD)/bin

test: deps-test build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: deps-bench build
	$(BUILD)/bin/parker_bench --out bench/results $(BENCH_ARGS)

clean:
	rm -rf build build-sanitize
