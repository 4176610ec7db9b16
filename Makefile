# Sluice. `make run` and `make test` work from a fresh Debian 12 machine (as root): each installs what is missing
# (`make run` only what building and running need; the test tools, and pytest in build/venv, come with `make test`).
#   CRYPTO=openssl (default) | mbedtls     libssh2's crypto backend for the product builds
SHELL := /bin/bash
CRYPTO ?= openssl
DEPS := tools/deps.sh
# products: build/<arch>/sluice for the default flavour, build/<arch>-mbedtls/sluice for the small one
SUFFIX := $(if $(filter mbedtls,$(CRYPTO)),-mbedtls,)
X86_BIN := build/x86_64$(SUFFIX)/sluice
ARM_BIN := build/aarch64$(SUFFIX)/sluice
# full Swift (debug, tests) links the x86_64 libraries of the chosen flavour
HOST_FLAGS = -Xcc -I$$p/include -Xlinker -L$$p/lib
HOST_PREFIX = p=$$($(DEPS) libs x86_64 $(CRYPTO)) && export SLUICE_CRYPTO=$(CRYPTO)
# the test requirements live in a virtual environment of their own (Debian 12's python3 refuses `pip install`,
# PEP 668); every pytest run and every tool that imports the e2e harness uses its interpreter
VENV := build/venv
PYTHON := $(CURDIR)/$(VENV)/bin/python3
PYTEST := $(PYTHON) -m pytest

FUZZ_SECONDS ?= 60

.PHONY: image-disk boot-test e2e-aarch64 e2e-x86_64 runtime-check all deps deps-build venv build unit static aarch64 products image image-rootfs deb e2e fuzz fuzz-smoke tsan asan e2e-asan soak soak-smoke test run clean FORCE \
        bench bench-smoke

all: static

# what building the x86_64 product needs (`make run`): build packages and the x86_64 C libraries, no test tools
deps-build:
	@$(DEPS) host-build
	@$(DEPS) libs x86_64 $(CRYPTO) >/dev/null

deps: deps-build
	@$(DEPS) host
	@$(MAKE) --no-print-directory venv
	@$(DEPS) libs aarch64 $(CRYPTO) >/dev/null

venv: $(VENV)/.installed
$(VENV)/.installed: Tests/e2e/requirements.txt
	@$(DEPS) host-venv
	@python3 -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r Tests/e2e/requirements.txt
	@touch $@

build: deps
	@$(HOST_PREFIX) && swift build $(HOST_FLAGS)

unit: deps
	@$(HOST_PREFIX) && swift test $(HOST_FLAGS)

# the x86_64 product needs what `make run` needs, no test tools (README's quick start begins with it)
static: deps-build
	@tools/build-product.sh x86_64 $(CRYPTO) $(X86_BIN)

aarch64: deps
	@tools/build-product.sh aarch64 $(CRYPTO) $(ARM_BIN)

# the Embedded defects of issue #13 (swift_bridgeObjectRetain) and #25 (same-named constant arrays across modules),
# reduced (tools/embedded-runtime-check): the fixes and the build's guard must hold on both targets
runtime-check: deps
	@tools/embedded-runtime-check/run.sh x86_64
	@tools/embedded-runtime-check/run.sh aarch64

# the read-only-root overlay for arm64 boards (image/README.md), and a whole Debian arm64 root file system with it
IMAGE := build/image/sluice-rootfs-aarch64$(SUFFIX).tar.gz
image: aarch64
	@image/build-overlay.sh $(ARM_BIN) $(IMAGE)

image-rootfs: image
	@image/build-rootfs.sh $(IMAGE) build/image/debian-bookworm-arm64-sluice$(SUFFIX).tar.gz

# the Debian packages of both targets (packaging/deb, tools/build-deb.sh): build/deb/sluice_<version>_{arm64,amd64}.deb,
# or sluice-small_… with CRYPTO=mbedtls
deb: static aarch64
	@CRYPTO=$(CRYPTO) tools/build-deb.sh aarch64 $(ARM_BIN) build/deb >/dev/null
	@CRYPTO=$(CRYPTO) tools/build-deb.sh x86_64 $(X86_BIN) build/deb >/dev/null

# bootable raw disk images of Debian bookworm with Sluice installed from its .deb (image/README.md): arm64 and amd64.
# The Debian base with its kernel (image/build-base.sh, minutes) is cached under /var/cache/sluice/image; each run
# copies it, installs the package and packs the disk (seconds). Boot one with tools/boot-image.sh ARCH HOSTPORT.
DEB_NAME := $(if $(filter mbedtls,$(CRYPTO)),sluice-small,sluice)
image-disk: deb
	@for a in arm64 amd64; do \
	  deb=$$(ls -t build/deb/$(DEB_NAME)_*_$$a.deb | head -1); \
	  image/build-disk.sh $$a "$$deb" build/image/sluice-$$a.img >/dev/null || exit 1; \
	done

# the images booted under qemu-system and checked whole (Tests/boot): READY=1, API and a tunnel through the restricted
# user-mode network, the read-only root, the watchdog, power cuts (ROUNDS of them on the KVM guest, or on the arm64
# guest where KVM does not work), the tmpfs fallback, the package's upgrade/remove/purge. About 8 minutes.
ROUNDS ?=
boot-test: image-disk
	@SLUICE_BOOT_ROUNDS=$(ROUNDS) $(PYTEST) -q Tests/boot

# both flavours for both targets (the Embedded build is what proves every source stays in the subset); a product
# build compiles one whole module at a time on one core, so the two targets build side by side
products:
	@$(MAKE) --no-print-directory -j2 --output-sync=target static aarch64 CRYPTO=openssl
	@$(MAKE) --no-print-directory -j2 --output-sync=target static aarch64 CRYPTO=mbedtls

# The e2e suite runs against the x86_64 product, then whole against the aarch64 product our users run (under
# qemu-aarch64-static -cpu cortex-a72, a Raspberry Pi 4), its SSH/C2S/SSE/API part against the small aarch64 flavour,
# and a short part of it on the Pi 3's and Pi 5's CPU models. Tests about the product binaries run in the first pass.
E2E_PRODUCTS = SLUICE_IMAGE=$(CURDIR)/$(IMAGE) SLUICE_DEB_DIR=$(CURDIR)/build/deb \
	SLUICE_ARM_BIN=$(CURDIR)/build/aarch64/sluice \
	SLUICE_BIN_MBEDTLS=$(CURDIR)/build/x86_64-mbedtls/sluice SLUICE_ARM_BIN_MBEDTLS=$(CURDIR)/build/aarch64-mbedtls/sluice
# Each pass runs its files on E2E_WORKERS pytest-xdist workers, a file per worker at a time (module fixtures stay
# whole): most of a pass's time is waiting (sshd restarts, keepalive and retry timers, the 60 s watchdog, idle
# probes), which overlaps; the harness gives each worker its own loopback DNS address and veth subnets.
# Measured on 2 cores: the x86_64 pass 770 s with one worker, 350 s with three (same results).
# Tests marked `alone` (bulk transfers, RSS that must settle) run after that, one at a time. pytest's 5 is "nothing
# selected" (a subset with no `alone` test).
# (tools/e2e-pass.sh: one command, so the pass's environment reaches both of its pytest runs)
E2E_WORKERS ?= 3
E2E_PASS = E2E_WORKERS=$(E2E_WORKERS) tools/e2e-pass.sh $(PYTHON) $(1)
E2E_CORE := Tests/e2e/test_s2s.py Tests/e2e/test_c2s.py Tests/e2e/test_sse.py Tests/e2e/test_api_tunnels.py Tests/e2e/test_names.py \
	Tests/e2e/test_api_auth.py
E2E_CPU_SUBSET := 64mib or target_host or auth_methods or test_sse or connect_then
E2E_CPUS ?= cortex-a53 cortex-a76
# the small flavour's software AES under emulation moves a few MB/s: its bulk-transfer and load tests stay with the
# openssl passes (the data paths are the same code)
E2E_MBEDTLS_SUBSET := not 64mib and not 500_cycles and not 200_parallel

e2e: e2e-x86_64
	@$(MAKE) --no-print-directory e2e-aarch64

# the first pass alone: the x86_64 product, and every test about the product binaries
e2e-x86_64: products image deb
	@echo "e2e: x86_64 (openssl)"
	@$(E2E_PRODUCTS) SLUICE_BIN=$(CURDIR)/$(X86_BIN) $(call E2E_PASS,Tests/e2e)

# the aarch64 passes alone (after `make products image`)
e2e-aarch64:
	@echo "e2e: aarch64 (openssl) under qemu -cpu cortex-a72"
	@$(E2E_PRODUCTS) SLUICE_BIN=$(CURDIR)/build/aarch64/sluice SLUICE_PASS=aarch64-openssl/cortex-a72 \
	 $(call E2E_PASS,Tests/e2e)
	@echo "e2e: aarch64 (mbedtls) under qemu -cpu cortex-a72"
	@$(E2E_PRODUCTS) SLUICE_BIN=$(CURDIR)/build/aarch64-mbedtls/sluice SLUICE_FLAVOUR=mbedtls \
	 SLUICE_PASS=aarch64-mbedtls/cortex-a72 $(call E2E_PASS,$(E2E_CORE) -k "$(E2E_MBEDTLS_SUBSET)")
	@for cpu in $(E2E_CPUS); do echo "e2e: aarch64 (openssl) under qemu -cpu $$cpu"; \
	 $(E2E_PRODUCTS) SLUICE_BIN=$(CURDIR)/build/aarch64/sluice SLUICE_QEMU_CPU=$$cpu SLUICE_PASS=aarch64-openssl/$$cpu \
	 $(call E2E_PASS,$(E2E_CORE) -k "$(E2E_CPU_SUBSET)") || exit 1; done

# libFuzzer over every pure parser (make fuzz FUZZ_SECONDS=600 for a long run)
fuzz: deps
	@tools/fuzz.sh $(FUZZ_SECONDS)

fuzz-smoke: deps
	@tools/fuzz.sh 3

# the unit tests under ThreadSanitizer
tsan: deps
	@$(HOST_PREFIX) && swift test --scratch-path .build-tsan --sanitize thread $(HOST_FLAGS)

# the binary as full Swift under AddressSanitizer (release, so the e2e timings hold), and the e2e suite against it;
# tests about the product binary itself (sizes, targets, flavours, packaging) are marked `product` and skipped
ASAN_BIN := .build-asan/release/sluice
asan: deps
	@$(HOST_PREFIX) && swift build -c release --scratch-path .build-asan --sanitize address $(HOST_FLAGS) --product sluice

# Leak detection is off: at exit LeakSanitizer lists ~3 KB of process-lifetime objects (the context, the tunnel manager,
# reactors, locks, the SSE hub) that reference each other and are never torn down; the amount does not grow with
# traffic (test_s2s's 500 connect/disconnect cycles check fds, threads and RSS on the product binary).
# The ASan pass runs what touches C (libssh2, libmicrohttpd, mbedTLS, splice and pool code) and untrusted input (HTTP,
# JSON, WebSocket frames, SOCKS, SSH servers and faults), so a new test file runs there unless listed here; `timing`
# tests skip there (docs/architecture.md, Tests: which pass runs what)
E2E_ASAN_SKIP := test_windows.py test_status_page.py test_harness.py test_check.py test_serve_state.py \
	test_autostart.py test_products.py test_packaging.py test_flavours.py
E2E_ASAN ?= Tests/e2e $(addprefix --ignore=Tests/e2e/,$(E2E_ASAN_SKIP))
ASAN_OPTIONS_E2E := detect_leaks=0:abort_on_error=1:log_path=$(CURDIR)/build/asan/report
e2e-asan: asan
	@rm -rf build/asan && mkdir -p build/asan
	@SLUICE_BIN=$(CURDIR)/$(ASAN_BIN) SLUICE_ASAN=1 ASAN_OPTIONS=$(ASAN_OPTIONS_E2E) \
	 $(call E2E_PASS,$(E2E_ASAN)); rc=$$?; \
	 if ls build/asan/report* >/dev/null 2>&1; then cat build/asan/report*; echo "AddressSanitizer reports above"; rc=1; fi; \
	 exit $$rc

# load: 200 API clients (wrk) + 100 status streams + 20 SSH tunnels carrying data, RSS sampled every second
SOAK_SECONDS ?= 60
soak: deps static
	@$(PYTHON) tools/soak.py --seconds $(SOAK_SECONDS) --bin $(CURDIR)/$(X86_BIN) --json build/soak.json

soak-smoke: deps static
	@$(PYTHON) tools/soak.py --seconds 15 --bin $(CURDIR)/$(X86_BIN) --json build/soak-smoke.json

# every stage timed (tools/stage.sh): the table at the end says what each cost, and a failing stage prints it too
STAGE = tools/stage.sh
SUB = $(MAKE) --no-print-directory
test:
	@$(STAGE) start
	@$(STAGE) deps $(SUB) deps
	@$(STAGE) runtime-check $(SUB) runtime-check
	@$(STAGE) unit $(SUB) unit
	@$(STAGE) tsan $(SUB) tsan
	@$(STAGE) fuzz-smoke $(SUB) fuzz-smoke
	@$(STAGE) products $(SUB) products
	@$(STAGE) e2e-x86_64 $(SUB) e2e-x86_64 CRYPTO=openssl
	@$(STAGE) e2e-aarch64 $(SUB) e2e-aarch64 CRYPTO=openssl
	@$(STAGE) bench-smoke $(SUB) bench-smoke
	@$(STAGE) e2e-asan $(SUB) e2e-asan CRYPTO=openssl
	@$(STAGE) soak-smoke $(SUB) soak-smoke CRYPTO=openssl
	@$(STAGE) image-disk $(SUB) image-disk CRYPTO=openssl
	@$(STAGE) boot-test $(SUB) boot-test CRYPTO=openssl
	@$(STAGE) table

# every data path against ssh/socat/websockify in one run (tools/bench/, about 5 minutes) -> docs/benchmarks.md;
# the smoke is about 20 s, writes build/bench/smoke.md and fails when a path is broken
bench: deps
	@$(MAKE) --no-print-directory static CRYPTO=openssl
	@$(MAKE) --no-print-directory static CRYPTO=mbedtls
	@SLUICE_BIN=$(CURDIR)/build/x86_64/sluice SLUICE_BIN_MBEDTLS=$(CURDIR)/build/x86_64-mbedtls/sluice \
	 $(PYTHON) tools/bench/bench.py

bench-smoke: deps
	@$(MAKE) --no-print-directory static CRYPTO=openssl
	@SLUICE_BIN=$(CURDIR)/build/x86_64/sluice $(PYTHON) tools/bench/bench.py --smoke

# builds and runs only what running needs (no test tools, no aarch64 libraries)
run: deps-build
	@tools/build-product.sh x86_64 $(CRYPTO) $(X86_BIN)
	@$(X86_BIN) serve

clean:
	rm -rf .build .build-* build
