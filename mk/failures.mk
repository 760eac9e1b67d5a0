# failures.mk — tests/unit/test_failures.c drives daemon/vbh_failures.c (pure
# logic with an injected clock) directly: it links that one daemon object.
FAILURES_OBJ := $(BUILD)/daemon/vbh_failures.o
$(BUILD)/tests/test_failures: $(FAILURES_OBJ)
$(BUILD)/tests/test_failures: TEST_LIBS := $(FAILURES_OBJ) $(TEST_LIBS)
$(BUILD)/tests/test_failures: CFLAGS_ALL += -Idaemon
