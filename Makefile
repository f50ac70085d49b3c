# SPDX-License-Identifier: GPL-2.0
#
# One entry point for everything: see README.md. `make V=1` shows commands.

# Target kernels: the newest installed Debian image (with headers) of each
# supported series, from tests/vm/kver; `make KVER=...` targets one. HSP is
# built once per kernel (build/KVER/kmod/hsp.ko); qwatch's BPF is CO-RE, so
# one object serves every kernel: its vmlinux.h always comes from the
# oldest supported kernel installed, whichever KVER is targeted.
ALL_KVERS := $(shell tests/vm/kver)
ifdef KVER
KVERS    := $(KVER)
else
KVERS    ?= $(ALL_KVERS)
KVER     := $(firstword $(KVERS))
endif
BTF_KVER := $(firstword $(ALL_KVERS) $(KVER))
OUTPUT   := $(abspath build)
VMLINUX   = $(OUTPUT)/kernel/vmlinux-$(BTF_KVER)

CLANG    ?= clang
BPFTOOL  ?= bpftool
CXX      ?= g++
PYTHON   := /usr/bin/python3
ARCH     := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH)
CXXFLAGS   ?= -O2 -g
CXXFLAGS   += -std=c++20 -Wall -Wextra -Werror -MMD -MP
# Generated headers are system headers, so -Werror never fires on them.
USER_INC   := -Ibpf -isystem $(OUTPUT)
LIBBPF_LIBS = $(shell pkg-config --libs libbpf)

# Debian packages the build, the VM and the tests need (`make deps`).
DEPS := build-essential clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev \
	pkg-config linux-image-amd64 linux-headers-amd64 linux-image-6.12-amd64 \
	linux-headers-6.12-amd64 qemu-system-x86 rsync zstd python3-zstandard \
	busybox-static kmod cpio xz-utils python3 python3-pytest python3-jsonschema python3-fastjsonschema \
	prometheus python3-docutils python3-sphinx groff-base iproute2 \
	nftables util-linux procps

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-9s %s\n' "$(1)" "$(patsubst $(OUTPUT)/%,build/%,$(2))";
MAKEFLAGS += --no-print-directory
endif

USER_SRCS := $(wildcard user/*.cpp)
USER_OBJS := $(patsubst user/%.cpp,$(OUTPUT)/user/%.o,$(USER_SRCS))
KMOD_SRCS := $(wildcard kmod/*.c)

.PHONY: all deps deps-debug kmod bpf user test-bpf test test-host test-vm test-debug fuzz demo bench htmldocs vm-shell clean
all: kmod bpf user test-bpf

deps:
	@missing=$$(for p in $(DEPS); do \
		dpkg-query -W -f '$${db:Status-Abbrev}' $$p 2>/dev/null | grep -q '^ii' || echo $$p; \
	done); \
	if [ -z "$$missing" ]; then echo "deps: all present"; exit 0; fi; \
	echo "deps: installing" $$missing; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q && apt-get install -y -q --no-install-recommends $$missing

# Kbuild builds in the module's directory, so each kernel gets a copy of
# kmod/ (mtimes kept: Kbuild's own dependency tracking still works).
# $(call copy_kmod,DIR): the sources only; what Kbuild made there stays.
copy_kmod = mkdir -p $(1) && rsync -a --delete --exclude='*.mod.c' --include='*.c' \
	--include='*.h' --include=Kbuild --include='include/***' --exclude='*' kmod/ $(1)/
kmod: $(addprefix kmod-,$(KVERS))

# (Not .PHONY: make applies no pattern rule to a phony target.)
kmod-%:
ifneq ($(KMOD_SRCS),)
	$(call msg,KBUILD,build/$*/kmod)
	$(Q)$(call copy_kmod,$(OUTPUT)/$*/kmod)
	$(Q)$(MAKE) -C /lib/modules/$*/build M=$(OUTPUT)/$*/kmod W=1 modules
else
	@true
endif

bpf: $(OUTPUT)/qwatch.skel.h

user: $(OUTPUT)/qwatch $(OUTPUT)/loadgen

$(OUTPUT) $(OUTPUT)/user $(OUTPUT)/kernel $(OUTPUT)/tests:
	$(Q)mkdir -p $@

# The target kernel's own types: its BTF, taken from the ELF image inside
# its bzImage (Debian ships no vmlinux), never /sys/kernel/btf of the host.
$(VMLINUX): /boot/vmlinuz-$(BTF_KVER) tests/vm/extract-vmlinux | $(OUTPUT)/kernel
	$(call msg,EXTRACT,$@)
	$(Q)tests/vm/extract-vmlinux $< $@

$(OUTPUT)/vmlinux.h: $(VMLINUX) | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $< format c > $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c bpf/qwatch.h $(OUTPUT)/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -I$(OUTPUT) -Ibpf -c $< -o $(@:.bpf.o=.tmp.bpf.o)
	$(Q)$(BPFTOOL) gen object $@ $(@:.bpf.o=.tmp.bpf.o)

# The tests' own BPF programs (host policy for tests/test_hsp_policy.py).
test-bpf: $(OUTPUT)/tests/policy_deny.bpf.o

$(OUTPUT)/tests/%.bpf.o: tests/bpf/%.bpf.c $(OUTPUT)/vmlinux.h | $(OUTPUT)/tests
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -I$(OUTPUT) -c $< -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(USER_OBJS): $(OUTPUT)/qwatch.skel.h
$(OUTPUT)/user/%.o: user/%.cpp | $(OUTPUT)/user
	$(call msg,CXX,$@)
	$(Q)$(CXX) $(CXXFLAGS) $(USER_INC) -c $< -o $@

$(OUTPUT)/qwatch: $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CXX) $^ $(LDFLAGS) $(LIBBPF_LIBS) -o $@

# The benchmark's load generator (tests/bench/), built like the reader.
$(OUTPUT)/loadgen: tests/bench/loadgen.cpp user/file_descriptor.h | $(OUTPUT)
	$(call msg,CXX,$@)
	$(Q)$(CXX) $(CXXFLAGS) -Iuser $< $(LDFLAGS) -pthread -o $@

# `make test`: the harness checks on the host, then the whole pytest suite
# in one VM boot; the exit status is pytest's.
test: all test-host test-vm

test-host:
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/host

# Debian zeroes every allocation (init_on_alloc=1), which would hide a field
# HSP forgets to set: the suite runs with that off and with SLUB poisoning,
# red zones and consistency checks on HSP's caches and on the kmalloc cache
# its segments come from (tests/test_hsp_disclosure.py relies on it).
VM_APPEND ?= init_on_alloc=0 slub_debug=FZPU,hsp,request_sock_hsp;P,kmalloc-512

# One VM boot per kernel of TEST_KVERS (every target kernel; KVER= picks
# one); every kernel runs even if one fails.
TEST_KVERS ?= $(KVERS)

test-vm: all
	@status=0; for kver in $(TEST_KVERS); do \
		echo "test-vm: $$kver"; \
		tests/vm/run --kernel $$kver --append '$(VM_APPEND)' -v -- \
			$(PYTHON) -m pytest -p no:cacheprovider -v --durations=15 tests/ || status=1; \
	done; exit $$status

# make test-debug: the HSP suites on a kernel with KASAN, lockdep, kmemleak
# and DEBUG_NET built from Debian's linux-source-6.1 (35 to 60 minutes on
# two cores the first time, cached in build/debug-kernel/), hsp.ko built
# against it. Not part of `make test`.
DEBUG_DEPS := linux-source-6.1 flex bison dwarves bc libssl-dev libelf-dev rsync
DEBUG_KERNEL := build/debug-kernel
# About a minute a test on the debug kernel under emulation: the suites
# where HSP's own code meets hostile input, faults and teardown.
DEBUG_SUITES ?= tests/test_hsp_bad_input.py tests/test_hsp_disclosure.py \
	tests/test_hsp_faults.py tests/test_hsp_module.py tests/test_hsp_policy.py \
	tests/test_hsp_fuzz.py
DEBUG_TIMEOUT_SCALE ?= 20
DEBUG_ITERATION_SCALE ?= 0.1

deps-debug: deps
	@$(MAKE) --no-print-directory deps DEPS="$(DEBUG_DEPS)"

test-debug: deps-debug bpf user
	tests/vm/build-debug-kernel $(DEBUG_KERNEL)
	$(call copy_kmod,$(DEBUG_KERNEL)/kmod)
	$(MAKE) -C $(DEBUG_KERNEL)/obj M=$(CURDIR)/$(DEBUG_KERNEL)/kmod W=1 modules
	tests/vm/run --image $(DEBUG_KERNEL)/bzImage --memory 3072 --timeout 14400 \
		--append '$(VM_APPEND)' -v -- env HSP_MODULE=$(CURDIR)/$(DEBUG_KERNEL)/kmod/hsp.ko \
		QW_TIMEOUT_SCALE=$(DEBUG_TIMEOUT_SCALE) QW_ITERATION_SCALE=$(DEBUG_ITERATION_SCALE) \
		tests/vm/debug-suite $(DEBUG_SUITES)

# Documentation/ as HTML in build/htmldocs; any warning (a broken reference,
# bad markup, a kernel-doc complaint) fails the build.
htmldocs:
	KERNELDOC=/usr/src/linux-headers-$(KVER:-amd64=-common)/scripts/kernel-doc \
		sphinx-build -W --keep-going -q -b html Documentation $(OUTPUT)/htmldocs

# make fuzz: HSP's socket API fuzzer alone for SECONDS (make test runs it
# for 120 s); HSP_FUZZ_SEED=S replays a seed. Every call is logged in
# build/fuzz/calls-SEED.log before it is made.
SECONDS ?= 600

fuzz: all
	tests/vm/run --kernel $(KVER) --append '$(VM_APPEND)' --timeout $$(( $(SECONDS) + 900 )) -v -- \
		env HSP_FUZZ_SECONDS=$(SECONDS) $(if $(HSP_FUZZ_SEED),HSP_FUZZ_SEED=$(HSP_FUZZ_SEED)) \
		$(PYTHON) -m pytest -p no:cacheprovider -v -s tests/test_hsp_fuzz.py

# Handshake rates of TCP and HSP and qwatch's cost, in interleaved rounds in
# one VM run (tests/bench/bench.py); results in build/bench/. Not in `make test`.
BENCH_ROUNDS ?= 5

bench: all
	@$(MAKE) --no-print-directory deps DEPS=gnuplot-nox
	tests/vm/run --kernel $(KVER) -- env BENCH_ROUNDS=$(BENCH_ROUNDS) $(PYTHON) tests/bench/bench.py

# The README's main job: qwatch's live view of slow TCP and HSP servers under
# bursts of clients in the test VM, for DEMO_SECONDS or until Ctrl-C.
DEMO_SECONDS ?= 30

demo: all
	tests/vm/run --kernel $(KVER) -- tests/demo/run $(DEMO_SECONDS)

vm-shell: all
	tests/vm/run --kernel $(KVER) --interactive

clean:
	$(call msg,CLEAN,build)
	$(Q)rm -rf $(OUTPUT)

-include $(USER_OBJS:.o=.d)
.DELETE_ON_ERROR:
.SECONDARY:
