# vbroker — top-level build. `make help` lists the targets.
#
# One non-recursive Makefile: every folder's .c files become objects under
# $(BUILD); SAN=1 builds into a separate tree with ASan+UBSan.

VERSION    := 0.1.0
PREFIX     ?= /usr/local
# where libvbroker looks for vbrokerd when it autostarts it (VBROKERD overrides)
BINDIR_FOR_AUTOSTART ?= $(PREFIX)/bin
# polkitd reads actions and rules only from these (never below PREFIX); an
# installed 60-vbroker.rules is the administrator's and is not overwritten
POLKIT_ACTIONDIR ?= /usr/share/polkit-1/actions
POLKIT_RULESDIR ?= /etc/polkit-1/rules.d
CC         ?= cc
SAN        ?= 0

ifeq ($(SAN),1)
BUILD      ?= build-san
OPTFLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SANLDFLAGS := -fsanitize=address,undefined
else
BUILD      ?= build
OPTFLAGS   := -O2 -g
SANLDFLAGS :=
endif

PKGS       := msgpack libsasl2 sqlite3 libssl libcrypto libcurl libxml-2.0 libssh2 libsystemd libvirt
PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS_BASE := -std=c11 -Wall -Wextra -Werror $(OPTFLAGS) -fPIC -D_GNU_SOURCE -DVB_VERSION='"$(VERSION)"'
CFLAGS_ALL := $(CFLAGS_BASE) -Iproto -Iutil -Ihvdrivers -Istore -Itests/support -Itests/peers $(CFLAGS)
# what libvbroker's objects (proto/ and thinclient/) and its clients (vbctl,
# examples/) see: its own layers only, so an include of util/ or hvdrivers/
# fails to compile instead of linking something libvbroker does not hold
CFLAGS_THIN := $(CFLAGS_BASE) -Iproto -Ithinclient $(CFLAGS)
LDFLAGS_ALL = $(SANLDFLAGS) $(LDFLAGS)

PROTO_SRC  := $(wildcard proto/*.c)
PROTO_OBJ  := $(PROTO_SRC:%.c=$(BUILD)/%.o)
LIBPROTO   := $(BUILD)/libvbproto.a

# util/, hvdrivers/ and store/ are shared by vbhostd and vbrokerd (never by libvbroker)
CORE_SRC   := $(wildcard util/*.c hvdrivers/*.c store/*.c)
CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
LIBCORE    := $(BUILD)/libvbcore.a

DAEMON_SRC := $(wildcard daemon/*.c)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
VBHOSTD    := $(BUILD)/vbhostd
BROKER_SRC := $(wildcard broker/*.c)
BROKER_OBJ := $(BROKER_SRC:%.c=$(BUILD)/%.o)
VBROKERD   := $(BUILD)/vbrokerd

# the public header with every internal one, for tests/unit/test_pubhdr*.c
INTERNAL_HDR := $(sort $(wildcard proto/*.h util/*.h hvdrivers/*.h store/*.h daemon/*.h broker/*.h))
HDR_LIST   := $(BUILD)/gen/vb_internal_headers.h

# libvbroker: the thin client (thinclient/ + the proto codec, nothing else)
THIN_SRC   := $(wildcard thinclient/*.c)
THIN_OBJ   := $(THIN_SRC:%.c=$(BUILD)/%.o)
LIBVBROKER := $(BUILD)/libvbroker.so
CLI_SRC    := $(wildcard cli/*.c)
VBCTL      := $(if $(CLI_SRC),$(BUILD)/vbctl)
EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)
BINARIES   := $(VBHOSTD) $(VBROKERD) $(LIBVBROKER) $(VBCTL) $(EXAMPLE_BIN)

# tests/peers/*.c: scripted peers (a hostile vbhostd) linked into the test support library
TSUP_SRC   := $(wildcard tests/support/*.c tests/peers/*.c)
TSUP_OBJ   := $(TSUP_SRC:%.c=$(BUILD)/%.o)
LIBTSUP    := $(BUILD)/libvbtestsupport.a

UNIT_SRC   := $(wildcard tests/unit/test_*.c tests/integ/test_*.c)
# tests/scan/: run by tests/run-tests.sh after every test_* binary (not named test_*)
SCAN_SRC   := tests/scan/secret_scan.c
UNIT_BIN   := $(patsubst %.c,$(BUILD)/tests/%,$(notdir $(UNIT_SRC) $(SCAN_SRC)))
TEST_LIBS   = $(LIBTSUP) $(LIBCORE) $(LIBPROTO)
# tests that drive the public API link libvbroker too
TEST_LINK   = $(TEST_LIBS) -L$(BUILD) -lvbroker -Wl,-rpath,$(abspath $(BUILD))

.PHONY: all deps deps-test check demo bench install clean help doc-tables
all: $(LIBPROTO) $(LIBCORE) $(BINARIES) $(UNIT_BIN)

help:
	@echo "make deps      install the Debian packages the build needs (root; no-op when present)"
	@echo "make deps-test also the test peers: sasldb tools, a KDC, sshd (check and demo run it)"
	@echo "make           build everything into $(BUILD)/"
	@echo "make check     deps + build + every test; last line: 'N passed, M failed'"
	@echo "make doc-tables   regenerate docs/protocol.md's tables from proto/vb_protocol.h"
	@echo "make check SAN=1   the same under ASan+UBSan"
	@echo "make demo      run what exists end to end"
	@echo "make bench     benchmarks"
	@echo "make install PREFIX=/usr/local"

deps:
	@./mk/deps.sh build

# what check and demo add: the real peers the tests start (sasldb, KDC, sshd, ...)
deps-test:
	@./mk/deps.sh test

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

# proto/ is linked into libvbroker: it sees only itself (and msgpack)
$(BUILD)/proto/%.o: proto/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Iproto $(CFLAGS) $(shell pkg-config --cflags msgpack) -MMD -MP -c $< -o $@

# the test support library starts the daemons of this build and the peers of this tree
$(BUILD)/tests/support/%.o: tests/support/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DVB_BUILD_DIR='"$(abspath $(BUILD))"' -DVB_SRC_DIR='"$(CURDIR)"' $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(LIBPROTO): $(PROTO_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(LIBCORE): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(VBHOSTD): $(DAEMON_OBJ) $(LIBCORE) $(LIBPROTO)
	$(CC) -o $@ $(DAEMON_OBJ) $(LIBCORE) $(LIBPROTO) $(PKG_LIBS) -lpthread $(LDFLAGS_ALL)

# libassuan: only vbrokerd speaks to a pinentry (broker/brk_pinentry.c)
$(VBROKERD): $(BROKER_OBJ) $(LIBCORE) $(LIBPROTO)
	$(CC) -o $@ $(BROKER_OBJ) $(LIBCORE) $(LIBPROTO) $(PKG_LIBS) $(shell pkg-config --libs libassuan gpg-error) -lpthread $(LDFLAGS_ALL)

$(BUILD)/thinclient/%.o: thinclient/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_THIN) $(shell pkg-config --cflags msgpack) -DVB_BINDIR='"$(BINDIR_FOR_AUTOSTART)"' -MMD -MP -c $< -o $@

# -z defs: every symbol libvbroker uses must come from what it links (not
# under SAN=1: clang leaves the sanitizer runtime to the executable)
ZDEFS      := $(if $(filter 1,$(SAN)),,-Wl,-z,defs)
$(LIBVBROKER): $(THIN_OBJ) $(PROTO_OBJ) thinclient/libvbroker.map
	$(CC) -shared -o $@.0 -Wl,-soname,libvbroker.so.0 -Wl,--version-script=thinclient/libvbroker.map \
	  $(ZDEFS) $(THIN_OBJ) $(PROTO_OBJ) $(shell pkg-config --libs msgpack) $(LDFLAGS_ALL)
	ln -sf libvbroker.so.0 $@

# vbctl names the per-user files the broker reads: the same rules, built in
# (libvbroker exports only its API)
VBCTL_SRC  := $(CLI_SRC) proto/vb_paths.c
$(VBCTL): $(VBCTL_SRC) $(LIBVBROKER)
	$(CC) $(CFLAGS_THIN) -o $@ $(VBCTL_SRC) -L$(BUILD) -lvbroker -Wl,-rpath,'$$ORIGIN' -Wl,-rpath,'$$ORIGIN/../lib' $(LDFLAGS_ALL)

$(BUILD)/examples/%: examples/%.c $(LIBVBROKER)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_THIN) -o $@ $< -L$(BUILD) -lvbroker -Wl,-rpath,'$$ORIGIN/..' $(LDFLAGS_ALL)

$(LIBTSUP): $(TSUP_OBJ)
	@rm -f $@
	ar rcs $@ $^

# one #include line per internal header (absolute paths: each header finds
# its siblings next to it); rewritten only when the list changes
$(HDR_LIST): FORCE
	@mkdir -p $(dir $@)
	@printf '#include "$(CURDIR)/%s"\n' $(INTERNAL_HDR) > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
.PHONY: FORCE
FORCE:

define test_rule
$(BUILD)/tests/$(basename $(notdir $(1))): $(1) $$(TEST_LIBS) $$(BINARIES) $$(HDR_LIST)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_ALL) -DVB_BUILD_DIR='"$$(abspath $$(BUILD))"' -DVB_SRC_DIR='"$$(CURDIR)"' -Ithinclient -I$$(BUILD)/gen $$(PKG_CFLAGS) $$(shell pkg-config --cflags cmocka) -MMD -MP $$< \
	  -o $$@ $$(TEST_LINK) $$(PKG_LIBS) $$(shell pkg-config --libs cmocka) -lpthread $$(LDFLAGS_ALL)
endef
$(foreach t,$(UNIT_SRC) $(SCAN_SRC),$(eval $(call test_rule,$(t))))

BENCH_SRC  := $(wildcard bench/*.c)
BENCH_BIN  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: bench/%.c $(LIBCORE) $(LIBPROTO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) -MMD -MP $< -o $@ $(LIBCORE) $(LIBPROTO) $(PKG_LIBS) -lpthread $(LDFLAGS_ALL)

# docs/protocol.md's tables from proto/vb_protocol.h (test_proctable checks them)
doc-tables:
	python3 docs/gen-tables.py --update docs/protocol.md

check: deps-test
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) SAN=$(SAN) VALGRIND=$(VALGRIND) ./tests/run-tests.sh

demo: deps-test
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) ./mk/demo.sh

bench: deps-test
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@BUILD=$(BUILD) ./bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man3 \
	  $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/doc/vbroker/examples
	install -m 0755 $(VBHOSTD) $(DESTDIR)$(PREFIX)/sbin/
	install -m 0755 $(VBROKERD) $(VBCTL) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(LIBVBROKER).0 $(DESTDIR)$(PREFIX)/lib/
	ln -sf libvbroker.so.0 $(DESTDIR)$(PREFIX)/lib/libvbroker.so
	install -m 0644 thinclient/vbroker.h proto/vbroker_types.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' thinclient/vbroker.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/vbroker.pc
	for m in docs/man/*.[138]; do \
	  [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man$${m##*.}/; done; true
	cp -r etc/. $(DESTDIR)$(PREFIX)/share/doc/vbroker/examples/
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/systemd/user
	for u in vbhostd.service vbhostd.socket vbhostd-tcp.socket vbhostd-tls.socket; do \
	  sed 's|/usr/local|$(PREFIX)|g' etc/systemd/$$u > $(DESTDIR)$(PREFIX)/lib/systemd/system/$$u; done
	for u in vbrokerd.service vbrokerd.socket; do \
	  sed 's|/usr/local|$(PREFIX)|g' etc/systemd/$$u > $(DESTDIR)$(PREFIX)/lib/systemd/user/$$u; done
	install -m 0644 docs/*.md docs/*.png $(DESTDIR)$(PREFIX)/share/doc/vbroker/
	install -d $(DESTDIR)$(POLKIT_ACTIONDIR) $(DESTDIR)$(POLKIT_RULESDIR)
	install -m 0644 etc/polkit-1/actions/org.vbroker.vbhostd.policy $(DESTDIR)$(POLKIT_ACTIONDIR)/
	[ -e $(DESTDIR)$(POLKIT_RULESDIR)/60-vbroker.rules ] || \
	  install -m 0644 etc/polkit-1/60-vbroker.rules $(DESTDIR)$(POLKIT_RULESDIR)/

clean:
	rm -rf build build-san

# feature makefiles (fuzzing, benchmarks) add their own targets here
include $(wildcard mk/*.mk)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
