# mk/bench.mk — benchmark rules beyond the generic `bench/*.c` one of the
# Makefile (see bench/README.md).
#
#   make bench        (Makefile) builds every bench/*.c and runs bench/run.sh;
#                     bench_e2e needs libvbroker, so its link rule is here.
#   make bench-peer   installs libvirt (mk/bench-deps.sh), builds the libvirt
#                     helper and runs bench/peer.sh: libvirtd and vbroker
#                     side by side, alternating rounds.

BENCH_E2E  := $(BUILD)/bench/bench_e2e
BENCH_PEER := $(BUILD)/bench/peer/bench_libvirt

# an explicit rule: takes precedence over the Makefile's $(BUILD)/bench/% pattern;
# VB_SRC_DIR finds tests/peers/xenapi_sim.py (the nested-chain rows)
$(BENCH_E2E): bench/bench_e2e.c $(LIBVBROKER) $(LIBTSUP) $(LIBCORE) $(LIBPROTO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DVB_SRC_DIR='"$(CURDIR)"' -Ithinclient $(PKG_CFLAGS) -MMD -MP $< -o $@ \
	  $(LIBTSUP) $(LIBCORE) $(LIBPROTO) -L$(BUILD) -lvbroker -Wl,-rpath,$(abspath $(BUILD)) \
	  $(PKG_LIBS) -lpthread -lm $(LDFLAGS_ALL)

# bench_sasl starts nothing, but makes its sasldbs with tests/support
$(BUILD)/bench/bench_sasl: bench/bench_sasl.c $(LIBTSUP) $(LIBCORE) $(LIBPROTO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) -MMD -MP $< -o $@ $(LIBTSUP) $(LIBCORE) $(LIBPROTO) \
	  $(PKG_LIBS) -lpthread $(LDFLAGS_ALL)

# bench_logins starts two vbhostd with tests/support and is their client
$(BUILD)/bench/bench_logins: bench/bench_logins.c $(LIBTSUP) $(LIBCORE) $(LIBPROTO) $(VBHOSTD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DVB_BUILD_DIR='"$(abspath $(BUILD))"' $(PKG_CFLAGS) -MMD -MP $< -o $@ \
	  $(LIBTSUP) $(LIBCORE) $(LIBPROTO) $(PKG_LIBS) -lpthread $(LDFLAGS_ALL)

# built only by bench-peer: needs libvirt-dev (pkg-config runs after bench-deps.sh)
$(BENCH_PEER): bench/peer/bench_libvirt.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror -O2 -g -D_GNU_SOURCE $$(pkg-config --cflags libvirt libsasl2) \
	  $< -o $@ $$(pkg-config --libs libvirt libsasl2) -lpthread $(LDFLAGS_ALL)

.PHONY: bench-peer
bench-peer: deps-test
	@./mk/bench-deps.sh
	@$(MAKE) --no-print-directory all $(BENCH_BIN) $(BENCH_PEER)
	@BUILD=$(BUILD) BENCH_PEER=$(abspath $(BENCH_PEER)) ./bench/peer.sh
