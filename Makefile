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
# CPPFLAGS, CXXFLAGS and LDFLAGS as a package build sets them (Debian's
# hardening: _FORTIFY_SOURCE, PIE, bindnow) reach the reader's build.
# Generated headers are system headers, so -Werror never fires on them.
USER_INC   := -Ibpf -isystem $(OUTPUT)
LIBBPF_LIBS = $(shell pkg-config --libs libbpf)

# Debian packages the build, the VM, the tests and `make deb` need (`make deps`).
DEPS := build-essential clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev \
	pkg-config linux-image-amd64 linux-headers-amd64 linux-image-6.12-amd64 \
	linux-headers-6.12-amd64 qemu-system-x86 rsync zstd python3-zstandard \
	busybox-static kmod cpio xz-utils python3 python3-pytest python3-jsonschema python3-fastjsonschema \
	prometheus python3-docutils python3-sphinx groff-base iproute2 \
	nftables util-linux procps \
	git dpkg-dev debhelper dh-dkms dkms lintian

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

.PHONY: all deps deps-debug deps-bench kmod bpf user test-bpf test test-host test-vm test-install test-debug fuzz demo bench bench-repeat bench-scale htmldocs vm-shell clean \
	install install-kmod uninstall uninstall-kmod deb
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
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(USER_INC) -c $< -o $@

$(OUTPUT)/qwatch: $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CXX) $^ $(LDFLAGS) $(LIBBPF_LIBS) -o $@

# The benchmark's load generator (tests/bench/), built like the reader.
$(OUTPUT)/loadgen: tests/bench/loadgen.cpp user/file_descriptor.h | $(OUTPUT)
	$(call msg,CXX,$@)
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) -Iuser $< $(LDFLAGS) -pthread -o $@

# `make install`: the reader, its man page and docs, the exporter's unit,
# defaults and alert rules, and (install-kmod) hsp.ko for every target
# kernel; NO_KMOD=1 leaves the module out, as the Debian package does (it
# ships the module's source, hsp-dkms). `make uninstall` with the same
# variables undoes it. The unit names the reader and its defaults by their
# paths for PREFIX=/usr; install writes in the ones it installs to. An
# existing $(SYSCONFDIR)/default/qwatch is the operator's and stays as it is.
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
# systemd reads system units from /usr/local/lib/systemd/system as well; for
# PREFIX=/usr, /lib/systemd/system is where Debian 12 packages put units and
# dh_installsystemd finds them (a PREFIX of neither kind needs UNITDIR=).
ifeq ($(PREFIX),/usr)
UNITDIR    ?= /lib/systemd/system
else
UNITDIR    ?= $(PREFIX)/lib/systemd/system
endif
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/qwatch
DATADIR    ?= $(PREFIX)/share/qwatch
INSTALLED_DOCS := README.md $(addprefix Documentation/,qwatch.rst handshake.rst hsp.rst testing.rst)
INSTALLED_DATA := packaging/qwatch.rules.yml Documentation/qwatch.schema.json
INSTALLED_DEFAULTS := $(DESTDIR)$(SYSCONFDIR)/default/qwatch
# Kbuild runs in the kernel's tree, where a relative DESTDIR means nothing.
MOD_ROOT   := $(abspath $(DESTDIR))
# modules_install names the module as the kernel's config compresses it.
HSP_MODULE_NAMES := hsp.ko hsp.ko.gz hsp.ko.xz hsp.ko.zst

install: $(OUTPUT)/qwatch $(if $(filter 1,$(NO_KMOD)),,install-kmod)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -D -m 0755 $(OUTPUT)/qwatch $(DESTDIR)$(SBINDIR)/qwatch
	$(Q)install -D -m 0644 man/qwatch.8 $(DESTDIR)$(MANDIR)/man8/qwatch.8
	$(Q)install -d $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DATADIR) $(DESTDIR)$(UNITDIR)
	$(Q)install -m 0644 $(INSTALLED_DOCS) $(DESTDIR)$(DOCDIR)/
	$(Q)install -m 0644 $(INSTALLED_DATA) $(DESTDIR)$(DATADIR)/
	$(Q)sed -e 's|/usr/sbin/qwatch|$(SBINDIR)/qwatch|g' \
		-e 's|/etc/default/qwatch|$(SYSCONFDIR)/default/qwatch|g' \
		packaging/qwatch-exporter.service > $(DESTDIR)$(UNITDIR)/qwatch-exporter.service
	$(Q)chmod 0644 $(DESTDIR)$(UNITDIR)/qwatch-exporter.service
	$(Q)if [ -e $(INSTALLED_DEFAULTS) ]; then \
		echo "install: keeping $(INSTALLED_DEFAULTS)"; \
	else \
		install -D -m 0644 packaging/qwatch.default $(INSTALLED_DEFAULTS); \
	fi

# Kbuild's modules_install copies hsp.ko to /lib/modules/KVER/updates (which
# takes precedence over the kernel's own directory), xz-compressed where the
# kernel's config says so (Debian's 6.12: hsp.ko.xz). Left alone it would
# also try to sign it with a key Debian's headers do not ship (failing,
# ignored, with OpenSSL errors), and run depmod itself where the kernel tree
# has a System.map (Debian's headers have none: it says it skips depmod),
# writing modules.dep* into DESTDIR. So no signing (the module is unsigned:
# it loads unless signatures are enforced, e.g. under Secure Boot), never
# Kbuild's depmod, and depmod here only for a live system: a staged DESTDIR
# belongs to whoever installs it.
install-kmod: $(addprefix install-kmod-,$(KVERS))

install-kmod-%: kmod-%
	$(Q)$(MAKE) -C /lib/modules/$*/build M=$(OUTPUT)/$*/kmod INSTALL_MOD_PATH=$(MOD_ROOT) \
		INSTALL_MOD_DIR=updates CONFIG_MODULE_SIG_ALL= DEPMOD=true modules_install
ifeq ($(DESTDIR),)
	$(call msg,DEPMOD,$*)
	$(Q)depmod -a $*
endif

# /etc/default/qwatch goes only if it is still as installed: an operator's
# edits outlive the program.
uninstall: $(if $(filter 1,$(NO_KMOD)),,uninstall-kmod)
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/qwatch $(DESTDIR)$(MANDIR)/man8/qwatch.8 \
		$(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(INSTALLED_DOCS))) \
		$(addprefix $(DESTDIR)$(DATADIR)/,$(notdir $(INSTALLED_DATA))) \
		$(DESTDIR)$(UNITDIR)/qwatch-exporter.service
	$(Q)rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DATADIR) 2>/dev/null || true
	$(Q)if [ ! -e $(INSTALLED_DEFAULTS) ] || cmp -s packaging/qwatch.default $(INSTALLED_DEFAULTS); then \
		rm -f $(INSTALLED_DEFAULTS); \
	else \
		echo "uninstall: keeping $(INSTALLED_DEFAULTS): it was edited"; \
	fi

uninstall-kmod: $(addprefix uninstall-kmod-,$(KVERS))

uninstall-kmod-%:
	$(call msg,UNINSTALL,$(DESTDIR)/lib/modules/$*/updates/hsp.ko)
	$(Q)rm -f $(addprefix $(DESTDIR)/lib/modules/$*/updates/,$(HSP_MODULE_NAMES))
ifeq ($(DESTDIR),)
	$(Q)if [ -d /lib/modules/$* ]; then depmod -a $*; fi
endif

# `make deb`: qwatch_VERSION_amd64.deb and hsp-dkms_VERSION_all.deb (from
# debian/) in build/deb/, built from a copy of the working tree's tracked
# and new files in build/deb/src/, so that what dpkg-buildpackage leaves
# behind (debian/tmp, stamps, a build/) stays under build/. The build runs
# in a clean make environment, as if started by hand; its log is
# build/deb/build.log.
DEB_DIR := $(OUTPUT)/deb

deb:
	$(call msg,DEB,$(DEB_DIR))
	$(Q)rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	$(Q)git ls-files -z --cached --others --exclude-standard > $(DEB_DIR)/files
	$(Q)rsync -a --from0 --files-from=$(DEB_DIR)/files --ignore-missing-args ./ $(DEB_DIR)/src/
	$(Q)cd $(DEB_DIR)/src && unset MAKEFLAGS MFLAGS MAKELEVEL && \
		dpkg-buildpackage -us -uc -b -Jauto > $(DEB_DIR)/build.log 2>&1 || \
		{ tail -n 40 $(DEB_DIR)/build.log; echo "deb: failed, see build/deb/build.log"; exit 1; }
	$(Q)cd $(DEB_DIR) && ls *.deb

# `make test`: the harness checks on the host, then the whole pytest suite
# in one VM boot per kernel, then the packages installed in the VM.
test: all test-host test-vm test-install

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

# The Debian packages as an operator uses them (tests/install/): installed,
# run and purged in the VM on a throw-away root. One boot, of the oldest
# kernel: dpkg -i has DKMS build hsp.ko for the running and the newest
# kernel, so every target's module is built there (about 10 minutes under
# emulation; the installed qwatch on each kernel is what test-vm runs).
test-install: all deb
	tests/vm/run --kernel $(firstword $(TEST_KVERS)) --writable-root --append '$(VM_APPEND)' -v -- \
		$(PYTHON) -m pytest -p no:cacheprovider -v --durations=5 tests/install

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

# qwatch's cost next to unobserved TCP and next to peer tools (bpftrace's
# tcpsynbl.bt and tcpaccept.bt, bcc's tcpaccept-bpfcc), in interleaved
# rounds in one VM run (tests/bench/bench.py); results in build/bench/.
# By default the guest has one vCPU under qemu's -icount (BENCH_ICOUNT):
# guest time follows the instructions the guest executes (8 ns each at
# shift=3; sleep=off jumps idle time), so a rate is the same whatever the
# host does and a ratio is a ratio of instructions per handshake. Debian's
# QEMU 7.2 never brings up a second vCPU under icount (single-threaded TCG),
# hence one. BENCH_CPUS=2 BENCH_ICOUNT= runs two vCPUs on the host's clock
# (multi-threaded TCG), as the tests do: noisier, by far. bench-repeat runs
# it BENCH_REPEAT times and says how far the summaries spread; bench-scale
# measures the resync with 10k listeners and 100k fds and the event
# stream's lossless rate (tests/bench/scale.py), with two vCPUs on the
# host's clock (SCALE_CPUS, SCALE_ICOUNT). None of them is in `make test`.
BENCH_ROUNDS ?= 3
BENCH_SECONDS ?= 3
BENCH_CPUS ?= 1
BENCH_ICOUNT ?= shift=3,sleep=off
BENCH_CONFIGS ?=
BENCH_REPEAT ?= 3
SCALE_CPUS ?= 2
SCALE_ICOUNT ?=
BENCH_DEPS := gnuplot-nox bpftrace bpfcc-tools
BENCH_VM = tests/vm/run --kernel $(KVER) --cpus $(BENCH_CPUS) \
	$(if $(BENCH_ICOUNT),--icount $(BENCH_ICOUNT)) --timeout 14400
BENCH_RUN = $(BENCH_VM) -- env BENCH_ROUNDS=$(BENCH_ROUNDS) BENCH_SECONDS=$(BENCH_SECONDS) \
	BENCH_ICOUNT=$(BENCH_ICOUNT) BENCH_CONFIGS='$(BENCH_CONFIGS)' $(PYTHON) tests/bench/bench.py

deps-bench:
	@$(MAKE) --no-print-directory deps DEPS="$(BENCH_DEPS)"

bench: all deps-bench
	$(BENCH_RUN)

bench-repeat: all deps-bench
	for run in $$(seq $(BENCH_REPEAT)); do $(BENCH_RUN) || exit; done
	$(PYTHON) tests/bench/summary.py $(BENCH_REPEAT)

bench-scale: all
	tests/vm/run --kernel $(KVER) --cpus $(SCALE_CPUS) $(if $(SCALE_ICOUNT),--icount $(SCALE_ICOUNT)) \
		--timeout 14400 --memory 3072 -- env BENCH_ICOUNT=$(SCALE_ICOUNT) $(PYTHON) tests/bench/scale.py

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
