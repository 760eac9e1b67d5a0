# fuzz.mk — libFuzzer targets (tests/fuzz/, README there).
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="frame uri"]
#                        build every target with clang and run each for N seconds
#   make fuzz-build      only build them
#   make fuzz-corpus     regenerate tests/fuzz/corpus/ (commit the result)
#
# The targets link the parsers' sources compiled again with the fuzzer's
# coverage hooks and ASan+UBSan, into $(BUILD)/fuzz/ (never the normal
# objects). Each run works on $(BUILD)/fuzz/corpus/TARGET, seeded from
# tests/fuzz/corpus/TARGET (new finds stay there for the next run) and
# re-checking tests/fuzz/regressions/TARGET; crashes land in
# $(BUILD)/fuzz/crashes/TARGET/. `make check` replays the committed corpora
# (tests/unit/test_fuzz_replay.c) with the normal compiler.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= frame uri conf authconf xenapi sasl_server sasl_client
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS   = $(CFLAGS_ALL) $(PKG_CFLAGS) -fno-omit-frame-pointer
# the codec and every module the targets reach; the SASL targets link the
# daemon (not its main, daemon/vbhostd.c), util/, hvdrivers/, store/ and the
# test support's sasldb helpers. An archive: each target pulls only what it uses.
FUZZ_DAEMON_SRC := $(filter-out daemon/vbhostd.c,$(DAEMON_SRC))
FUZZ_LIB_SRC := $(PROTO_SRC) $(CORE_SRC) $(FUZZ_DAEMON_SRC) $(TSUP_SRC)
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LIB     := $(FUZZ_DIR)/libvbfuzz.a
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-corpus

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

FUZZ_LDLIBS = $(shell pkg-config --libs msgpack libxml-2.0)
# the SASL targets: Cyrus SASL, the daemon's store and drivers, threads;
# the URI target checks drivers and parameters (hvdrivers/vb_driver.c),
# which pulls in the driver table
$(FUZZ_DIR)/fuzz_sasl_server $(FUZZ_DIR)/fuzz_sasl_client $(FUZZ_DIR)/fuzz_uri: FUZZ_LDLIBS = $(PKG_LIBS) -lpthread -ldl

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Idaemon -fsanitize=fuzzer $(FUZZ_SAN) -MMD -MP $< -o $@ \
	  $(FUZZ_LIB) $(FUZZ_LDLIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: deps-test
	@$(MAKE) --no-print-directory fuzz-build
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) ./tests/fuzz/run.sh $(FUZZ_TARGETS)

# The replay in `make check` runs the SASL targets too: it links the daemon's
# objects (without its main) besides the test libraries.
FUZZ_REPLAY_DAEMON_OBJ := $(FUZZ_DAEMON_SRC:%.c=$(BUILD)/%.o)
$(BUILD)/tests/test_fuzz_replay: $(FUZZ_REPLAY_DAEMON_OBJ)
$(BUILD)/tests/test_fuzz_replay: TEST_LIBS := $(FUZZ_REPLAY_DAEMON_OBJ) $(TEST_LIBS)
$(BUILD)/tests/test_fuzz_replay: CFLAGS_ALL += -Idaemon

# The generator uses the normal build's codec (it only encodes).
$(BUILD)/fuzz/gen_corpus: tests/fuzz/gen_corpus.c $(LIBPROTO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) -MMD -MP $< -o $@ $(LIBPROTO) $(shell pkg-config --libs msgpack) $(LDFLAGS_ALL)

# (corpus/xenapi is hand-written XML, not generated: it stays)
fuzz-corpus: $(BUILD)/fuzz/gen_corpus
	rm -rf tests/fuzz/corpus/frame tests/fuzz/corpus/uri tests/fuzz/corpus/conf tests/fuzz/corpus/authconf \
	  tests/fuzz/corpus/sasl_server tests/fuzz/corpus/sasl_client
	$(BUILD)/fuzz/gen_corpus $(CURDIR) tests/fuzz/corpus
