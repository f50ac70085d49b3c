# SPDX-License-Identifier: GPL-2.0
#
# One entry point for everything: see README.md. `make V=1` shows commands.

KVER     ?= $(shell tests/vm/kver)
KDIR     ?= /lib/modules/$(KVER)/build
OUTPUT   := $(abspath build)
VMLINUX   = $(OUTPUT)/kernel/vmlinux-$(KVER)

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
	pkg-config linux-image-amd64 linux-headers-amd64 qemu-system-x86 \
	busybox-static kmod cpio xz-utils python3 python3-pytest iproute2 \
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

.PHONY: all deps kmod bpf user test test-host test-vm vm-shell clean
all: kmod bpf user

deps:
	@missing=$$(for p in $(DEPS); do \
		dpkg-query -W -f '$${db:Status-Abbrev}' $$p 2>/dev/null | grep -q '^ii' || echo $$p; \
	done); \
	if [ -z "$$missing" ]; then echo "deps: all present"; exit 0; fi; \
	echo "deps: installing" $$missing; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q && apt-get install -y -q --no-install-recommends $$missing

kmod:
ifneq ($(KMOD_SRCS),)
	$(call msg,KBUILD,kmod)
	$(Q)$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod W=1 modules
else
	@true
endif

bpf: $(OUTPUT)/qwatch.skel.h

user: $(OUTPUT)/qwatch

$(OUTPUT) $(OUTPUT)/user $(OUTPUT)/kernel:
	$(Q)mkdir -p $@

# The target kernel's own types: its BTF, taken from the ELF image inside
# its bzImage (Debian ships no vmlinux), never /sys/kernel/btf of the host.
$(VMLINUX): /boot/vmlinuz-$(KVER) tests/vm/extract-vmlinux | $(OUTPUT)/kernel
	$(call msg,EXTRACT,$@)
	$(Q)tests/vm/extract-vmlinux $< $@

$(OUTPUT)/vmlinux.h: $(VMLINUX) | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $< format c > $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c bpf/qwatch.h $(OUTPUT)/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -I$(OUTPUT) -Ibpf -c $< -o $(@:.bpf.o=.tmp.bpf.o)
	$(Q)$(BPFTOOL) gen object $@ $(@:.bpf.o=.tmp.bpf.o)

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

# `make test`: the harness checks on the host, then the whole pytest suite
# in one VM boot; the exit status is pytest's.
test: all test-host test-vm

test-host:
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/host

test-vm: all
	tests/vm/run --kernel $(KVER) -v -- $(PYTHON) -m pytest -p no:cacheprovider -v tests/

vm-shell: all
	tests/vm/run --kernel $(KVER) --interactive

clean:
	$(call msg,CLEAN,build)
	$(Q)rm -rf $(OUTPUT)
ifneq ($(KMOD_SRCS),)
	$(Q)$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod clean
endif

-include $(USER_OBJS:.o=.d)
.DELETE_ON_ERROR:
.SECONDARY:
